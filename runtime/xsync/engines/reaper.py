"""The reaper: purges deleted objects that no sync step of this synchronizer will delete.

The deletion pass purges the objects of observed models once their step's `delete_record`
succeeded. Deleted objects of every other model would stay soft-deleted for ever; XOS's core
reaper removes them (reference section 6, step 4), and so does this one, with XOS's rules: an
object waits while its delete policies have not run, while another synchronizer still has to
delete its backend state (`backend_need_delete` without `backend_need_reap`), and while any
object, live or deleted, still links to it (its cascade set). Chains clear in one pass,
dependents first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Iterable

from ..observability import LOGGER_NAME
from ..orm.spec import ModelSpec
from ..backend_state import exception_message
from ..store.base import PendingQuery, Record, Store

# At most this many rounds per pass: a chain longer than that finishes in the next pass.
MAX_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class _Inbound:
    source: str
    column: str


class Reaper:
    """Purges reapable deleted objects of the models in `models` (those no step observes)."""

    def __init__(
        self,
        store: Store,
        specs: Iterable[ModelSpec],
        observed: Iterable[str],
        *,
        hold: Callable[[str, Any], bool] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.hold = hold
        self.log = log or logging.getLogger(LOGGER_NAME).getChild("reaper")
        specs = list(specs)
        covered = set(observed)
        # A step observing a base model (Service) deletes its subclasses' objects too.
        self.models = [
            s.name for s in specs if s.name not in covered and not covered.intersection(s.ancestors)
        ]
        self._ancestors = {s.name: s.ancestors for s in specs}
        self._inbound: dict[str, list[_Inbound]] = {}
        for spec in specs:
            for column in spec.columns:
                if column.kind == "link" and column.peer is not None:
                    self._inbound.setdefault(column.peer, []).append(
                        _Inbound(spec.name, column.column)
                    )
        self._seen_seq: int | None = None

    def run_pass(self) -> int:
        """Purge what can be purged now; the number of objects purged."""
        if not self.models or not self._changed_since_last_pass():
            return 0
        purged = 0
        for _ in range(MAX_ROUNDS):
            done = self._round()
            purged += done
            if done == 0:
                break
        return purged

    def _changed_since_last_pass(self) -> bool:
        # Nothing was written since the last pass: nothing new can have become reapable.
        try:
            found = self.store.changes(self._seen_seq or 0)
        except Exception:  # noqa: BLE001 - without the change log, scan every time
            return True
        if self._seen_seq is not None and not found:
            return False
        if found:
            self._seen_seq = found[-1].seq
        return True

    def _round(self) -> int:
        purged = 0
        for model in self.models:
            try:
                deleted = self.store.pending(model, PendingQuery.DELETED_OBJECTS)
            except Exception as exc:  # noqa: BLE001 - one model's query costs that model one pass
                self.log.warning(
                    "reaper: listing deleted objects failed",
                    extra={"model": model, "error": exception_message(exc)},
                )
                continue
            for record in deleted:
                if record.get("leaf_model_name", model) not in (model, None, ""):
                    continue  # a subclass's object: its own model's turn
                if self._reapable(model, record):
                    try:
                        self.store.purge(model, int(record["id"]))
                    except Exception as exc:  # noqa: BLE001 - retried on the next pass
                        self.log.warning(
                            "reaper: purge failed",
                            extra={
                                "model": model,
                                "id": record["id"],
                                "error": exception_message(exc),
                            },
                        )
                        continue
                    purged += 1
                    self.log.info("reaped", extra={"model": model, "id": record["id"]})
        return purged

    def _reapable(self, model: str, record: Record) -> bool:
        if record.get("backend_need_delete") and not record.get("backend_need_reap"):
            return False  # a synchronizer still has backend state to delete
        if self.hold is not None and self.hold(model, SimpleNamespace(**record)):
            return False  # delete policies have not run
        return not self._linked(model, int(record["id"]))

    def _linked(self, model: str, id: int) -> bool:
        for target in (model, *self._ancestors.get(model, ())):
            for inbound in self._inbound.get(target, ()):
                if self.store.query(
                    inbound.source, filters={inbound.column: id}, deleted=None, limit=1
                ):
                    return True
        return False
