"""Lark itself, built from our grammars: what the tests compare the Lark-free run time with."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterator

from lark import Lark
from lark.lexer import Lexer as LarkLexer

from xprotogen.lalr import Lexer
from xprotogen.parser import GRAMMAR_DIR, _xproto_builder


def build_lark(grammar: str, *, strict: bool = False) -> Lark:
    """A plain Lark LALR parser for `grammar` (a file in `grammar/`) with Lark's own lexer.

    `strict=True` asks Lark to prove that no two terminals collide and that the grammar has
    no LALR conflicts: it raises otherwise.
    """
    return Lark(
        (GRAMMAR_DIR / grammar).read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        maybe_placeholders=True,
        strict=strict,
    )


@lru_cache(maxsize=None)
def lark_with_our_lexer() -> Lark:
    """A Lark parser for xproto.lark that lexes with the lexer our run time built from the
    saved tables: Lark's own parser then checks what our lexer produces."""
    builder = _xproto_builder()
    lexer = _lark_lexer(builder.driver.lexer)
    return Lark(builder.text, parser="lalr", lexer=lexer, maybe_placeholders=True)


def _lark_lexer(lexer: Lexer) -> type[Any]:
    """`lexer` behind Lark's lexer interface."""

    class MasterLexer(LarkLexer):
        __future_interface__ = 2

        def __init__(self, conf: Any) -> None:
            self._lexer = lexer

        def lex(self, lexer_state: Any, parser_state: Any) -> Iterator[Any]:
            source: Any = lexer_state.text
            return self._lexer.lex(getattr(source, "text", source))

    return MasterLexer
