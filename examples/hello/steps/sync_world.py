"""Sync step for World, filled in: the "backend" is a directory of JSON files next to the config.

Idempotent: writing the same file twice leaves the backend as one write would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from xsync import SyncStep

if TYPE_CHECKING:
    from api.client import World

BACKEND = Path(__file__).resolve().parent.parent / "backend"


class SyncWorld(SyncStep):
    """Publishes each World as backend/world-<id>.json."""

    observes = "World"

    def sync_record(self, obj: World) -> None:
        BACKEND.mkdir(exist_ok=True)
        (BACKEND / f"world-{obj.id}.json").write_text(json.dumps({"name": obj.name}))

    def delete_record(self, obj: World) -> None:
        (BACKEND / f"world-{obj.id}.json").unlink(missing_ok=True)
