"""Sync step for ColorNew, filled in: the web server only takes colors written #rrggbb.

A color in another form fails, and the service instances that use it wait for it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from xsync import SyncStep

if TYPE_CHECKING:
    from api.client import ColorNew

HTML_CODE = re.compile(r"#[0-9a-fA-F]{6}")


class SyncColorNew(SyncStep):
    """Checks each color; there is nothing else to push for it."""

    observes = "ColorNew"

    def sync_record(self, obj: ColorNew) -> None:
        if not HTML_CODE.fullmatch(obj.html_code):
            raise ValueError(f"color {obj.name}: {obj.html_code!r} is not an HTML code (#rrggbb)")

    def delete_record(self, obj: ColorNew) -> None:
        pass  # nothing was created for a color
