"""Sync step for Ink, filled in: the printer only takes colours written #rrggbb.

An ink in another form fails, and everything printed in it waits for it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from xsync import SyncStep

if TYPE_CHECKING:
    from api.client import Ink

HTML_CODE = re.compile(r"#[0-9a-fA-F]{6}")


class SyncInk(SyncStep):
    """Checks each ink; there is nothing else to push for it."""

    observes = "Ink"

    def sync_record(self, obj: Ink) -> None:
        if not HTML_CODE.fullmatch(obj.html_code):
            raise ValueError(f"ink {obj.name}: {obj.html_code!r} is not a colour code (#rrggbb)")

    def delete_record(self, obj: Ink) -> None:
        pass  # nothing was made for an ink
