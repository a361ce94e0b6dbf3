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

from xprotogen.orm_specs import ModelSpec

from ..observability import LOGGER_NAME
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
        # model -> the reaped models its links point at: when one of its objects goes, theirs
        # may become free.
        self._peers: dict[str, set[str]] = {}
        reaped = set(self.models)
        for spec in specs:
            for column in spec.columns:
                if column.kind == "link" and column.peer is not None:
                    self._inbound.setdefault(column.peer, []).append(
                        _Inbound(spec.name, column.column)
                    )
                    self._peers.setdefault(spec.name, set()).update(
                        m
                        for m in reaped
                        if m == column.peer or column.peer in self._ancestors.get(m, ())
                    )
        self._seen_seq: int | None = None

    def run_pass(self) -> int:
        """Purge what can be purged now; the number of objects purged.

        Only models that something happened to since the last pass are scanned: their own
        objects changed, or an object linking to theirs went away.
        """
        if not self.models:
            return 0
        todo = self._touched_models()
        purged = 0
        for _ in range(MAX_ROUNDS):
            if not todo:
                break
            done = self._round([m for m in self.models if m in todo])
            purged += sum(done.values())
            todo = {peer for model in done for peer in self._peers.get(model, ())}
        return purged

    def _touched_models(self) -> set[str]:
        """The reaped models to scan: all of them the first time, then those the store's
        change log names since the last pass (with the models their links point at, when an
        object was deleted).

        The log is pruned (`Store.forget_changes`), so entries after the last pass may be
        gone: an object deleted then would never be named again. Pruning removes only the
        oldest entries and keeps the newest, so entries were missed exactly when the first
        one read is numbered above the last one seen plus one; every model is scanned then.
        """
        if self._seen_seq is None:
            try:
                # Taken before the scan: what changes while it runs is named next time.
                self._seen_seq = self.store.latest_change()
            except Exception:  # noqa: BLE001 - the log's end is asked again next pass
                pass
            return set(self.models)
        try:
            found = self.store.changes(self._seen_seq)
        except Exception:  # noqa: BLE001 - without the change log, scan everything
            return set(self.models)
        if not found:
            return set()
        missed = found[0].seq > self._seen_seq + 1
        self._seen_seq = found[-1].seq
        if missed:
            return set(self.models)
        reaped = set(self.models)
        touched: set[str] = set()
        for change in found:
            if change.model in reaped:
                touched.add(change.model)
            if change.kind == "delete":
                touched.update(self._peers.get(change.model, ()))
        return touched

    def _round(self, models: list[str]) -> dict[str, int]:
        purged: dict[str, int] = {}
        for model in models:
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
                if not self._reapable(model, record):
                    continue
                try:
                    self.store.purge(model, int(record["id"]))
                except Exception as exc:  # noqa: BLE001 - retried on the next pass
                    self.log.warning(
                        "reaper: purge failed",
                        extra={"model": model, "id": record["id"], "error": exception_message(exc)},
                    )
                    continue
                purged[model] = purged.get(model, 0) + 1
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
