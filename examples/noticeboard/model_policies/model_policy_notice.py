"""Model policy for Notice, filled in: a notice is printed as `copies` posters.

The policy only creates and removes Poster objects; the Poster sync step prints them. It is
idempotent: running it again for the same notice finds the posters already there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xsync import Policy

if TYPE_CHECKING:
    from api.client import Notice


class NoticePolicy(Policy):
    """Keeps one Poster per copy of each notice."""

    model_name = "Notice"

    def handle_create(self, obj: Notice) -> None:
        self.handle_update(obj)

    def handle_update(self, obj: Notice) -> None:
        posters = self.model_accessor.Poster
        have = {p.number: p for p in posters.objects.filter(notice_id=obj.id)}
        for number in range(1, obj.copies + 1):
            if number not in have:
                posters(notice=obj, number=number).save()
        for number, poster in have.items():
            if number > obj.copies:
                poster.delete()

    def handle_delete(self, obj: Notice) -> None:
        for poster in self.model_accessor.Poster.objects.filter(notice_id=obj.id):
            poster.delete()
