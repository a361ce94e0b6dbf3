"""Engines: each runs one kind of work against the store (sync and delete here)."""

from .sync import PassReport, RecordView, SyncEngine

__all__ = ["PassReport", "RecordView", "SyncEngine"]
