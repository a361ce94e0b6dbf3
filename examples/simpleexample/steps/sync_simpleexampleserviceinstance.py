"""Sync step for SimpleExampleServiceInstance, filled in: each instance is a web page.

The "web server" is a directory of HTML files next to the config. Writing the page again
gives the same file, so the step is idempotent.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from xsync import SyncStep

if TYPE_CHECKING:
    from api.client import SimpleExampleServiceInstance

SITE = Path(__file__).resolve().parent.parent / "site"


class SyncSimpleExampleServiceInstance(SyncStep):
    """Renders each instance's page to site/<id>.html."""

    observes = "SimpleExampleServiceInstance"

    def sync_record(self, obj: SimpleExampleServiceInstance) -> None:
        color = obj.foreground_color
        style = f' style="color: {color.html_code}"' if color is not None else ""
        SITE.mkdir(exist_ok=True)
        (SITE / f"{obj.id}.html").write_text(
            f"<html><body><h1{style}>{html.escape(obj.tenant_message)}</h1></body></html>\n"
        )

    def delete_record(self, obj: SimpleExampleServiceInstance) -> None:
        (SITE / f"{obj.id}.html").unlink(missing_ok=True)
