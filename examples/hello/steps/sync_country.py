"""Sync step for Country, filled in: a country needs its world in the backend first.

The backend knows no country called Atlantis: syncing it fails, and the greetings sent to
it are held back (their status names the country) until it succeeds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from xsync import SyncStep

if TYPE_CHECKING:
    from api.client import Country

BACKEND = Path(__file__).resolve().parent.parent / "backend"


class SyncCountry(SyncStep):
    """Publishes each Country as backend/country-<id>.json."""

    observes = "Country"

    def sync_record(self, obj: Country) -> None:
        if obj.name.lower() == "atlantis":
            raise RuntimeError(f"the backend has no country called {obj.name}")
        # The engine synced the world first (model-deps); check rather than trust.
        if not (BACKEND / f"world-{obj.world_id}.json").exists():
            raise RuntimeError(f"world {obj.world_id} is not in the backend yet")
        (BACKEND / f"country-{obj.id}.json").write_text(
            json.dumps({"name": obj.name, "world": obj.world_id})
        )

    def delete_record(self, obj: Country) -> None:
        (BACKEND / f"country-{obj.id}.json").unlink(missing_ok=True)
