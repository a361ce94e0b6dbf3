"""The xproto grammars, as data."""
