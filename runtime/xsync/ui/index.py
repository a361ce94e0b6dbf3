"""Every shown object's row, kept in memory so that a page of 100,000 objects answers at once.

The index reads the store once at start-up (`load`), then follows the change feed (`update`),
so a request never scans the store: counts are kept per model and state as rows change, and
a filtered, sorted view is computed once, paged from there, and kept in order as rows change.
The state of each row is `backend_state.classify`'s; a row whose backoff ends is read back and
classified again when it is due (`refresh_due`), because no change in the store says so.
The failure groups are `status.failing_groups` and `status.held_groups`, as `xsync status`.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..backend_state import STATES, State, classify, is_gone
from ..planner import Key, LinkFields
from ..status import FailingGroup, HeldGroup, Observed, failing_groups, held_groups, observe
from ..store.base import NotFound, Record, Store
from .state import Summary, summarize

# Worst first: what a model's colour in the graph says.
SEVERITY: tuple[State, ...] = (
    State.ERROR,
    State.HELD,
    State.BACKING_OFF,
    State.DEFERRED,
    State.PENDING,
    State.OK,
)
SORTS = ("model", "id", "name", "state", "message", "next_retry")
VIEWS_KEPT = 8  # filtered, sorted views cached between two changes (one per open page, roughly)


@dataclass(frozen=True, slots=True)
class Row:
    summary: Summary
    observed: Observed
    text: str  # what a search looks in: the name and the message shown, casefolded once

    @staticmethod
    def of(summary: Summary, observed: Observed) -> Row:
        return Row(summary, observed, f"{summary.name}\n{_shown_message(summary)}".casefold())


@dataclass(frozen=True, slots=True)
class Filters:
    """The list's filters: model and state exactly; `text` in the name or message, or the id."""

    model: str | None = None
    state: str | None = None
    text: str | None = None
    sort: str = "model"
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    offset: int
    rows: list[Summary]


@dataclass(slots=True)
class _View:
    """The keys a filter selects, kept in ascending sort order beside their sort values, so that
    a change moves one row (two bisections) instead of computing the view again."""

    filters: Filters
    values: list[Any]
    keys: list[Key]

    def slice(self, offset: int, limit: int) -> list[Key]:
        if not self.filters.descending:
            return self.keys[offset : offset + limit]
        end = len(self.keys) - offset
        return self.keys[max(0, end - limit) : end][::-1] if end > 0 else []

    def position(self, key: Key) -> int | None:
        try:
            at = self.keys.index(key)
        except ValueError:
            return None
        return len(self.keys) - 1 - at if self.filters.descending else at

    def remove(self, value: Any, key: Key) -> None:
        at = bisect.bisect_left(self.values, value)
        if at < len(self.keys) and self.keys[at] == key:
            del self.values[at], self.keys[at]

    def add(self, value: Any, key: Key) -> None:
        at = bisect.bisect_left(self.values, value)
        self.values.insert(at, value)
        self.keys.insert(at, key)


class StatusIndex:
    """The rows of `models` in `store`; safe to use from several threads."""

    def __init__(
        self, store: Store, models: Sequence[str], links: LinkFields, order: Sequence[str]
    ) -> None:
        self.store = store
        self.models = list(models)
        self.links = links
        self._rank = {name: i for i, name in enumerate(order)}
        self._lock = threading.Lock()
        self._rows: dict[Key, Row] = {}
        self._linked_from: dict[Key, set[Key]] = {}  # who links to an object
        self._counts: dict[str, dict[State, int]] = {m: _zero() for m in self.models}
        self._due: list[tuple[float, Key]] = []  # (next_retry, key), a heap
        self.version = 0
        self._views: dict[Filters, _View] = {}
        self._sort_keys = self._sort_keys_by_name()
        self._groups: tuple[int, list[FailingGroup], list[HeldGroup]] | None = None
        self.ready = threading.Event()  # set once `load` has read every object

    def wait_ready(self, timeout: float) -> bool:
        """Whether the first `load` is done, waiting up to `timeout` seconds for it."""
        return self.ready.wait(timeout)

    # --- writing --------------------------------------------------------------------------

    def load(self, now: float) -> None:
        """Read every object of every model (replacing what was known)."""
        rows: dict[Key, Row] = {}
        for model in self.models:
            for record in self.store.query(model, deleted=None):
                if not is_gone(record):
                    row = self._row(model, record, now)
                    rows[row.observed.key] = row
        with self._lock:
            self._rows = {}
            self._views = {}
            self._linked_from = {}
            self._counts = {m: _zero() for m in self.models}
            self._due = []
            for key, row in rows.items():
                self._put(key, row)
            self._changed()
        self.ready.set()

    def update(self, model: str, id: int, record: Record | None, now: float) -> Summary | None:
        """Take the object's record as read now (None: gone); its new row's summary."""
        key = (model, id)
        row = None if record is None or is_gone(record) else self._row(model, record, now)
        with self._lock:
            old = self._rows.get(key)
            self._drop(key)
            if row is not None:
                self._put(key, row)
            for view in self._views.values():
                sort_key = self._sort_keys[view.filters.sort]
                if old is not None and _matches(view.filters, old):
                    view.remove(sort_key(old.summary), key)
                if row is not None and _matches(view.filters, row):
                    view.add(sort_key(row.summary), key)
            self._changed()
        return row.summary if row is not None else None

    def refresh_due(self, now: float) -> list[Summary]:
        """Classify again the rows whose backoff has ended; their new summaries."""
        with self._lock:
            due: list[Key] = []
            while self._due and self._due[0][0] <= now:
                _, key = heapq.heappop(self._due)
                row = self._rows.get(key)
                if row is not None and row.summary.next_retry is not None:
                    if row.summary.next_retry <= now:
                        due.append(key)
        found: list[Summary] = []
        for model, id in dict.fromkeys(due):
            summary = self.update(model, id, self._read(model, id), now)
            if summary is not None:
                found.append(summary)
        return found

    def _read(self, model: str, id: int) -> Record | None:
        try:
            return self.store.get(model, id, include_deleted=True)
        except NotFound:
            return None

    def _row(self, model: str, record: Record, now: float) -> Row:
        c = classify(record, now)
        return Row.of(
            summarize(model, record, now=now, classified=c), observe(model, record, self.links, c)
        )

    def _put(self, key: Key, row: Row) -> None:
        self._rows[key] = row
        for peer in row.observed.links:
            self._linked_from.setdefault(peer, set()).add(key)
        self._counts.setdefault(key[0], _zero())[row.summary.state] += 1
        if row.summary.next_retry is not None:
            heapq.heappush(self._due, (row.summary.next_retry, key))

    def _drop(self, key: Key) -> None:
        old = self._rows.pop(key, None)
        if old is not None:
            self._counts[key[0]][old.summary.state] -= 1
            for peer in old.observed.links:
                self._linked_from.get(peer, set()).discard(key)

    def _changed(self) -> None:
        self.version += 1

    # --- reading --------------------------------------------------------------------------

    def summary(self, model: str, id: int) -> Summary | None:
        with self._lock:
            row = self._rows.get((model, id))
        return row.summary if row is not None else None

    def counts(self) -> dict[str, dict[str, int]]:
        """Per model, how many objects are in each state."""
        with self._lock:
            return {
                model: {state.value: tally[state] for state in STATES}
                for model, tally in self._counts.items()
            }

    def page(self, filters: Filters, offset: int, limit: int) -> Page:
        """The rows `filters` select, sorted, from `offset`: at most `limit` of them."""
        with self._lock:
            view = self._view(filters)
            rows = [self._rows[k].summary for k in view.slice(offset, limit)]
            return Page(len(view.keys), offset, rows)

    def position(self, filters: Filters, key: Key) -> int | None:
        """Where `key` is in the view `filters` selects, or None when it is not in it."""
        with self._lock:
            return self._view(filters).position(key)

    def _view(self, f: Filters) -> _View:
        view = self._views.get(f)
        if view is None:
            sort_key = self._sort_keys[f.sort]
            found = sorted(
                (sort_key(row.summary), key) for key, row in self._rows.items() if _matches(f, row)
            )
            view = _View(f, [value for value, _ in found], [key for _, key in found])
            if len(self._views) >= VIEWS_KEPT:
                self._views.pop(next(iter(self._views)))
            self._views[f] = view
        return view

    def _sort_keys_by_name(self) -> dict[str, Callable[[Summary], Any]]:
        """Per sort, each row's sort value; all end with the model and id, so none are equal."""
        rank, last = self._rank, len(self._rank)

        def model_order(s: Summary) -> tuple[int, str]:
            return (rank.get(s.model, last), s.model)

        severity = {state: i for i, state in enumerate(SEVERITY)}
        return {
            "model": lambda s: (model_order(s), s.id),
            "id": lambda s: (s.id, model_order(s)),
            "name": lambda s: (s.name.casefold(), model_order(s), s.id),
            "state": lambda s: (severity[s.state], model_order(s), s.id),
            "message": lambda s: (_shown_message(s).casefold(), model_order(s), s.id),
            "next_retry": lambda s: (s.next_retry or 0.0, model_order(s), s.id),
        }

    def waited_by(self, model: str, id: int) -> list[Summary]:
        """The objects that link to this one: they sync after it."""
        with self._lock:
            keys = sorted(self._linked_from.get((model, id), ()))
            return [self._rows[k].summary for k in keys if k in self._rows]

    def groups(self) -> tuple[list[FailingGroup], list[HeldGroup]]:
        """Failures by message and held-back objects by root cause, as `xsync status` has them."""
        with self._lock:
            if self._groups is not None and self._groups[0] == self.version:
                return self._groups[1], self._groups[2]
            version = self.version
            observed = [row.observed for row in self._rows.values()]
        failing = failing_groups(observed)
        _, held = held_groups(observed)
        with self._lock:
            self._groups = (version, failing, held)
        return failing, held

    def worst(self) -> dict[str, State | None]:
        """Each model's worst state; None for a model without objects."""
        with self._lock:
            return {model: _worst(tally) for model, tally in self._counts.items()}


def _zero() -> dict[State, int]:
    return {state: 0 for state in STATES}


def _worst(tally: Mapping[State, int]) -> State | None:
    return next((state for state in SEVERITY if tally.get(state)), None)


def _shown_message(s: Summary) -> str:
    return "" if s.state is State.OK else s.message


def _matches(f: Filters, row: Row) -> bool:
    if f.model and row.summary.model != f.model:
        return False
    if f.state and row.summary.state != f.state:
        return False
    needle = (f.text or "").strip().casefold()
    return not needle or needle in row.text or needle == str(row.summary.id)
