"""`PullStep` lives in `authoring`, with the other bases; kept so that `xsync.pullstep` stays
importable for code written against it."""

from .authoring import PullStep

__all__ = ["PullStep"]
