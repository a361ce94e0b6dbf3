"""Sync step for Greeting, filled in: a greeting with `fail` set is refused by the backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from xsync import SyncStep

if TYPE_CHECKING:
    from api.client import Greeting

BACKEND = Path(__file__).resolve().parent.parent / "backend"


class SyncGreeting(SyncStep):
    """Publishes each Greeting as backend/greeting-<id>.json."""

    observes = "Greeting"

    def sync_record(self, obj: Greeting) -> None:
        if obj.fail:
            raise RuntimeError(f"the greeting service refused {obj.message!r}")
        (BACKEND / f"greeting-{obj.id}.json").write_text(
            json.dumps({"message": obj.message, "country": obj.country_id})
        )

    def delete_record(self, obj: Greeting) -> None:
        (BACKEND / f"greeting-{obj.id}.json").unlink(missing_ok=True)
