"""`backend_status` text in the XOS format, and the data `xsync status` shows."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .backoff import Register
from .executor import Outcome, execute_plan
from .planner import Key, LinkFields, PlanItem, plan_sync
from .store.base import PendingQuery, Record, Store

SEPARATOR = " // "
MAX_STATUS = 1024
OK = "OK"


def append_status(current: str | None, message: str) -> str:
    """Add `message` to a status the way XOS does (reference 2.2).

    The status is a " // "-separated list; a message already in it is not repeated, only
    the last two entries are kept, and the text is cut to 1024 characters.
    """
    parts = [part for part in (current or "").split(SEPARATOR) if part]
    if message not in parts:
        parts.append(message)
    return SEPARATOR.join(parts[-2:])[:MAX_STATUS]


def last_message(status: str | None) -> str:
    """The newest entry of a status list."""
    parts = (status or "").split(SEPARATOR)
    return parts[-1]


def exception_message(exc: BaseException) -> str:
    """The text XOS records for a failure: the message, or the exception's name if it has none."""
    text = str(exc)
    return text if text else type(exc).__name__


def held_message(model: str, id: int, cause: str) -> str:
    """The status of an object held back because `model` `id` failed; XOS's wording."""
    return f"Failed due to error in model {model} id {id}: {cause}"


@dataclass(slots=True)
class ModelStatus:
    ok: int = 0
    pending: int = 0
    error: int = 0
    backing_off: int = 0
    next_retry: float | None = None

    def as_json(self) -> dict[str, int]:
        return {
            "ok": self.ok,
            "pending": self.pending,
            "error": self.error,
            "backing_off": self.backing_off,
        }


@dataclass(frozen=True, slots=True)
class Blocked:
    key: Key
    waits_for: tuple[Key, ...]


@dataclass(slots=True)
class PolicyStatus:
    """Per model with policies: objects policed, waiting for their policies, or failing."""

    ok: int = 0
    pending: int = 0
    error: int = 0
    backing_off: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (id, policy_status)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "pending": self.pending,
            "error": self.error,
            "backing_off": self.backing_off,
            "errors": [{"id": i, "status": text} for i, text in self.errors],
        }


@dataclass(frozen=True, slots=True)
class EventPartition:
    """The consumer group's position on one partition, as the broker reports it."""

    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


@dataclass(slots=True)
class EventStatus:
    """The event consumers' state; `problem` says why it could not be read (a broker down)."""

    group: str
    endpoint: str
    partitions: list[EventPartition] = field(default_factory=list)
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "endpoint": self.endpoint,
            "problem": self.problem,
            "partitions": [
                {"topic": p.topic, "partition": p.partition, "committed": p.committed, "lag": p.lag}
                for p in self.partitions
            ],
        }


@dataclass(slots=True)
class StatusReport:
    """Per model counts, and the held-back objects with the chain of objects they wait for.

    `policies` and `events` are filled only when the synchronizer has policies or event steps.
    """

    models: dict[str, ModelStatus] = field(default_factory=dict)
    blocked: list[Blocked] = field(default_factory=list)
    policies: dict[str, PolicyStatus] | None = None
    events: EventStatus | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "models": {name: counts.as_json() for name, counts in self.models.items()},
            "blocked": [
                {"model": b.key[0], "id": b.key[1], "waits_for": [[m, i] for m, i in b.waits_for]}
                for b in self.blocked
            ],
        }
        if self.policies is not None:
            out["policies"] = {name: c.as_json() for name, c in self.policies.items()}
        if self.events is not None:
            out["events"] = self.events.as_json()
        return out

    def as_text(self, now: float) -> str:
        lines = [f"{'MODEL':<24} {'OK':>6} {'PENDING':>8} {'ERROR':>6} {'BACKOFF':>8}  NEXT RETRY"]
        for name, c in self.models.items():
            retry = f"in {max(0.0, c.next_retry - now):.1f}s" if c.next_retry is not None else "-"
            lines.append(
                f"{name:<24} {c.ok:>6} {c.pending:>8} {c.error:>6} {c.backing_off:>8}  {retry}"
            )
        if self.blocked:
            lines.append("")
            lines.append("Held back:")
            for b in self.blocked:
                chain = " -> ".join(f"{m} {i}" for m, i in b.waits_for)
                lines.append(f"  {b.key[0]} {b.key[1]} waits for {chain}")
        if self.policies is not None:
            lines.extend(
                ["", f"{'POLICIES':<24} {'OK':>6} {'PENDING':>8} {'ERROR':>6} {'BACKOFF':>8}"]
            )
            for name, p in self.policies.items():
                lines.append(f"{name:<24} {p.ok:>6} {p.pending:>8} {p.error:>6} {p.backing_off:>8}")
                lines.extend(f"  {name} {i}: {text}" for i, text in p.errors)
        if self.events is not None:
            lines.extend(
                ["", f"Event consumers (group {self.events.group}, {self.events.endpoint}):"]
            )
            if self.events.problem is not None:
                lines.append(f"  {self.events.problem}")
            for e in self.events.partitions:
                committed = "-" if e.committed is None else str(e.committed)
                lines.append(f"  {e.topic}[{e.partition}] committed {committed} lag {e.lag}")
        return "\n".join(lines)


def collect_policy_status(
    store: Store, models: Sequence[str], *, now: float
) -> dict[str, PolicyStatus]:
    """Policy counts per model: failing (policy_code 2), waiting to be policed, or policed."""
    from .engines.policies import policy_register

    out: dict[str, PolicyStatus] = {}
    for model in models:
        counts = PolicyStatus()
        waiting = {
            record["id"]
            for query in (PendingQuery.DIRTY_POLICIES, PendingQuery.DELETED_POLICIES)
            for record in store.pending(model, query)
        }
        for record in store.query(model, deleted=None):
            if record["id"] not in waiting:
                counts.ok += 1
                continue
            if record.get("policy_code") == 2:
                counts.error += 1
                counts.errors.append((record["id"], str(record.get("policy_status") or "")))
            else:
                counts.pending += 1
            if not policy_register(record.get("backend_register")).is_due(now):
                counts.backing_off += 1
        out[model] = counts
    return out


def collect_event_status(
    endpoint: str, group: str, topics: Sequence[str], *, timeout: float = 15.0
) -> EventStatus:
    """The group's committed offsets and lag per partition, read from the broker; a broker
    that cannot be reached is reported in `problem`, not raised, within about `timeout` s."""
    status = EventStatus(group, endpoint)
    where = f"cannot read the consumer group from {endpoint}"
    unreachable = _unreachable(endpoint)
    if unreachable is not None:
        status.problem = f"{where}: {unreachable}"
        return status
    result: list[Any] = []

    def read() -> None:
        try:
            from .engines.kafka_bus import read_group_offsets

            result.append(read_group_offsets(endpoint, group, topics))
        except Exception as exc:  # noqa: BLE001 - status must say what is wrong, not crash
            result.append(exc)

    # The Kafka client retries a lost broker for a long time; status answers within a bound.
    reader = threading.Thread(target=read, name="xsync-status-events", daemon=True)
    reader.start()
    reader.join(timeout)
    if not result:
        status.problem = f"{where}: no answer within {timeout:g} s"
        return status
    if isinstance(result[0], Exception):
        status.problem = f"{where}: {type(result[0]).__name__}: {result[0]}"
        return status
    offsets: dict[tuple[str, int], tuple[int | None, int]] = result[0]
    status.partitions = [
        EventPartition(topic, partition, committed, end)
        for (topic, partition), (committed, end) in sorted(offsets.items())
    ]
    return status


def _unreachable(endpoint: str) -> str | None:
    """Why no bootstrap server of `endpoint` accepts a connection; None when one does."""
    problems = []
    for server in filter(None, (part.strip() for part in endpoint.split(","))):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "localhost", int(port)), timeout=2.0):
                return None
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(f"{server}: {reason}")
    return "; ".join(problems) or "no bootstrap server"


def collect_status(
    store: Store, models: Sequence[str], links: LinkFields, *, now: float
) -> StatusReport:
    """Read the store and report on the objects of `models` (the observed ones)."""
    report = StatusReport()
    items: list[PlanItem] = []
    for model in models:
        counts = ModelStatus()
        dirty = {record["id"] for record in store.pending(model, PendingQuery.DIRTY_OBJECTS)}
        records = store.query(model, deleted=None)
        for record in records:
            if record.get("deleted") and record.get("backend_need_reap"):
                continue  # done; waiting to be purged
            needs_work = bool(record.get("deleted")) or record["id"] in dirty
            _count(counts, record, needs_work, now)
            if needs_work and not record.get("deleted"):
                items.append(
                    PlanItem(
                        (model, record["id"]),
                        links.links_of(model, record.get),
                        _runnable(record, now),
                    )
                )
        report.models[model] = counts
    report.blocked = _blocked(items)
    return report


def _count(counts: ModelStatus, record: Record, needs_work: bool, now: float) -> None:
    register = Register.parse(record.get("backend_register"))
    if not needs_work:
        counts.ok += 1
    elif record.get("backend_code") == 2:
        counts.error += 1
    else:
        counts.pending += 1
    if needs_work and register.failures and not register.is_due(now):
        counts.backing_off += 1
        counts.next_retry = (
            register.next_run
            if counts.next_retry is None
            else min(counts.next_retry, register.next_run)
        )


def _runnable(record: Mapping[str, Any], now: float) -> bool:
    """An object in error or backing off is what others wait for."""
    register = Register.parse(record.get("backend_register"))
    return record.get("backend_code") != 2 and register.is_due(now)


def _blocked(items: Iterable[PlanItem]) -> list[Blocked]:
    # A dry run of the plan: what the next pass would hold back if every runnable object synced.
    execution = execute_plan(plan_sync(items), lambda key: Outcome.SYNCED, max_workers=1)
    return [
        Blocked(key, tuple(execution.waits_for(key)))
        for key, outcome in sorted(execution.outcomes.items())
        if outcome is Outcome.HELD
    ]
