"""`EventStep` and `Event` live in `authoring`, with the other bases; kept so that
`xsync.events` stays importable for code written against it."""

from .authoring import Event, EventStep

__all__ = ["Event", "EventStep"]
