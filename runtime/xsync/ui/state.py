"""What the status page says about an object: its state, its error, its backoff, its links.

The state is `backend_state.classify`'s, the same `xsync status` and the metrics report.
An error keeps its red even while it backs off; its `next_retry` says when it is tried again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..backend_state import (
    BackendRegister,
    Classification,
    STATES,
    State,
    classify,
    is_gone,
    last_message,
    needs_policy,
    status_entries,
    sync_register,
)
from ..planner import Key, LinkFields, ModelDeps
from ..store.base import NotFound, Record, Store

TIMESTAMP_FIELDS = frozenset(
    ("created", "updated", "enacted", "policed", "changed_by_step", "changed_by_policy")
)
LIFECYCLE_TEXT_FIELDS = frozenset(
    ("backend_status", "backend_register", "policy_status", "leaf_model_name", "backend_handle")
)
NAME_LENGTH = 80
NEIGHBOURS_SHOWN = 100  # objects listed as waiting for one object; the total is given too


@dataclass(frozen=True, slots=True)
class Summary:
    """One object as a row of the list: enough to draw its icon and to filter it."""

    model: str
    id: int
    name: str
    state: State
    message: str
    next_retry: float | None
    deleting: bool
    policy_state: str

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "id": self.id,
            "name": self.name,
            "state": self.state.value,
            "message": self.message,
            "next_retry": self.next_retry,
            "deleting": self.deleting,
            "policy_state": self.policy_state,
        }

    def matches(self, *, model: str | None, state: str | None, text: str | None) -> bool:
        """The list's filters: model and state exactly, `text` in the name or equal to the id."""
        if model and self.model != model:
            return False
        if state and self.state != state:
            return False
        if text:
            needle = text.strip().casefold()
            return needle in self.name.casefold() or needle == str(self.id)
        return True


def summarize(
    model: str, record: Mapping[str, Any], *, now: float, classified: Classification | None = None
) -> Summary:
    c = classified if classified is not None else classify(record, now)
    return Summary(
        model=model,
        id=int(record["id"]),
        name=display_name(record),
        state=c.state,
        message=last_message(_text(record.get("backend_status"))),
        next_retry=c.next_retry,
        deleting=bool(record.get("deleted")),
        policy_state=c.policy_state.value,
    )


def display_name(record: Mapping[str, Any]) -> str:
    """`name`, or for a model without one its first own text field, or `#id`."""
    name = record.get("name")
    if isinstance(name, str) and name:
        return name
    for key, value in record.items():
        if key not in LIFECYCLE_TEXT_FIELDS and isinstance(value, str) and value:
            return value[:NAME_LENGTH]
    return f"#{record['id']}"


def backoff_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """The backoff record as the page shows it; timestamps of 0 mean "never"."""
    register = sync_register(record.get("backend_register"))
    return {
        "failures": register.failures,
        "last_failure": register.last_failure or None,
        "next_run": register.next_run or None,
        "last_success": register.last_success or None,
        "raw": _text(record.get("backend_register")) or "",
    }


def policy_json(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": _text(record.get("policy_status")) or "",
        "code": record.get("policy_code"),
        "policed": _timestamp(record.get("policed")),
        "pending": needs_policy(record),
    }


def field_rows(record: Mapping[str, Any]) -> list[list[str]]:
    """Every column as [name, text]; the page shows these as text, never as markup."""
    return [[name, display_value(name, value)] for name, value in record.items()]


def display_value(name: str, value: object) -> str:
    if value is None:
        return ""
    if name in TIMESTAMP_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
        stamp = _timestamp(value)
        return f"{iso_time(stamp)} ({value})" if stamp is not None else str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _timestamp(value: object) -> float | None:
    # The XOS API sends an unset time as 0.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value and math.isfinite(value) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class StatusReader:
    """Reads the store for the page: lists, one object in detail, its neighbours by link."""

    def __init__(
        self,
        store: Store,
        models: Sequence[str],
        deps: ModelDeps,
        waited_by: Callable[[str, int], list[Summary]] | None = None,
    ) -> None:
        """`waited_by` answers who links to an object (the UI's index does, without reading
        the store); by default the linking models are read (`xsync status MODEL ID`)."""
        self.store = store
        self.models = list(models)
        self.links = LinkFields.from_model_deps(deps)
        # Who links to a model: model -> [(linking model, its link field)].
        self._linked_from: dict[str, list[tuple[str, str]]] = {}
        for model in self.models:
            for field_name, peer in self.links.for_model(model):
                self._linked_from.setdefault(peer, []).append((model, field_name))
        self.waited_by = waited_by or self._read_waited_by

    def has_model(self, model: str) -> bool:
        return model in self.models

    def summary(self, model: str, id: int, *, now: float) -> Summary | None:
        """The object's row now, or None once it is gone for good."""
        try:
            record = self.store.get(model, id, include_deleted=True)
        except NotFound:
            return None
        return None if is_gone(record) else summarize(model, record, now=now)

    def detail(self, model: str, id: int, *, now: float) -> dict[str, Any]:
        """Everything the page shows on a click. Raises `NotFound`."""
        record = self.store.get(model, id, include_deleted=True)
        register = BackendRegister.parse(record.get("backend_register"))
        waited_by = self.waited_by(model, id)
        # What the last pass held it back for: the object that really failed.
        held = [register.held_by] if register.held_by is not None else []
        return {
            "object": summarize(model, record, now=now).as_json(),
            "backend_status": _text(record.get("backend_status")) or "",
            "status_entries": status_entries(_text(record.get("backend_status"))),
            "backend_code": record.get("backend_code"),
            "backoff": backoff_json(record),
            "traceback": register.traceback,
            "policy": policy_json(record),
            "policy_traceback": register.policy_traceback,
            "fields": field_rows(record),
            "waits_for": [
                s.as_json() for s in self._neighbours(self.waits_for(model, record), now)
            ],
            "held_by": [s.as_json() for s in self._neighbours(held, now)],
            "waited_by": [s.as_json() for s in waited_by[:NEIGHBOURS_SHOWN]],
            "waited_by_total": len(waited_by),
        }

    def waits_for(self, model: str, record: Mapping[str, Any]) -> list[Key]:
        """The objects this one links to along the dependency graph: they sync first."""
        return list(dict.fromkeys(self.links.links_of(model, record.get)))

    def _read_waited_by(self, model: str, id: int) -> list[Summary]:
        """The objects that link to this one along the dependency graph, read from the store."""
        now = time.time()
        found: dict[Key, Summary] = {}
        for other, field_name in self._linked_from.get(model, ()):
            for record in self.store.query(other, deleted=None):
                if is_gone(record):
                    continue
                single = record.get(field_name + "_id")
                many = record.get(field_name + "_ids")
                if single == id or (isinstance(many, (list, tuple)) and id in many):
                    found.setdefault((other, int(record["id"])), summarize(other, record, now=now))
        return list(found.values())

    def _neighbours(self, keys: Iterable[Key], now: float) -> list[Summary]:
        found: list[Summary] = []
        for model, id in keys:
            if not self.has_model(model):
                continue
            summary = self.summary(model, id, now=now)
            if summary is not None:
                found.append(summary)
        return found
