"""`Policy` lives in `authoring`, with the other bases; kept so that `xsync.policy` stays
importable for code written against it."""

from .authoring import Policy

__all__ = ["Policy"]
