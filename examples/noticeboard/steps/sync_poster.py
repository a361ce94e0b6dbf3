"""Sync step for Poster, filled in: each poster is a web page.

The "printer" is a directory of HTML files next to the config. Writing the page again gives
the same file, so the step is idempotent.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from xsync import SyncStep

if TYPE_CHECKING:
    from api.client import Poster

SITE = Path(__file__).resolve().parent.parent / "site"


class SyncPoster(SyncStep):
    """Prints each poster to site/poster-<id>.html."""

    observes = "Poster"

    def sync_record(self, obj: Poster) -> None:
        notice = obj.notice
        # The owner is stored as a Service; leaf_model gives it back as the NoticeBoard it is.
        headline = getattr(notice.owner.leaf_model, "headline", "")
        SITE.mkdir(exist_ok=True)
        (SITE / f"poster-{obj.id}.html").write_text(
            f"<html><body><h2>{html.escape(headline)}</h2>"
            f'<h1 style="color: {notice.ink.html_code}">{html.escape(notice.text)}</h1>'
            f"<p>copy {obj.number} of {notice.copies}</p></body></html>\n"
        )

    def delete_record(self, obj: Poster) -> None:
        (SITE / f"poster-{obj.id}.html").unlink(missing_ok=True)
