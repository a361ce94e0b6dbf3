"""What `xsync status` shows: objects per state (as `backend_state.classify` reads them), the
held-back chains, the policies and the event consumers."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .backend_state import (
    last_message,
    POLICY_STATES,
    STATES,
    Classification,
    PolicyState,
    State,
    classify,
    is_gone,
)
from .backoff import earliest
from .executor import Outcome, execute_plan
from .planner import Key, LinkFields, PlanItem, plan_sync
from .store.base import Record, Store


@dataclass(slots=True)
class ModelStatus:
    """How many objects of a model are in each state (`backend_state.State`)."""

    counts: dict[State, int] = field(default_factory=lambda: {s: 0 for s in STATES})
    next_retry: float | None = None

    def add(self, c: Classification) -> None:
        self.counts[c.state] += 1
        self.next_retry = earliest((self.next_retry, c.next_retry))

    def as_json(self) -> dict[str, Any]:
        return {
            **{state.value: n for state, n in self.counts.items()},
            "next_retry": self.next_retry,
        }


@dataclass(frozen=True, slots=True)
class Blocked:
    key: Key
    waits_for: tuple[Key, ...]

    @property
    def root(self) -> Key:
        """The object at the end of the chain: the one that really failed or waits."""
        return self.waits_for[-1]


EXAMPLES = 3  # objects named per group
GROUPS_SHOWN = 10  # groups listed in the text; --json has them all


@dataclass(slots=True)
class FailingGroup:
    """Objects of one model whose last attempt failed with the same message."""

    model: str
    message: str
    ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "message": self.message,
            "count": len(self.ids),
            "examples": self.ids[:EXAMPLES],
        }

    def as_text(self) -> str:
        more = ", ..." if len(self.ids) > EXAMPLES else ""
        shown = ", ".join(str(i) for i in self.ids[:EXAMPLES])
        return f"  {len(self.ids)} {self.model}: {self.message}  ({self.model} {shown}{more})"


@dataclass(slots=True)
class HeldGroup:
    """Objects of one model held back by objects of one model in one state (the root cause)."""

    model: str
    root_model: str
    root_state: State
    held: list[Blocked] = field(default_factory=list)
    roots: set[int] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "count": len(self.held),
            "waits_for_model": self.root_model,
            "waits_for_state": self.root_state.value,
            "waits_for_count": len(self.roots),
            "examples": [
                {"id": b.key[1], "waits_for": [[m, i] for m, i in b.waits_for]}
                for b in self.held[:EXAMPLES]
            ],
        }

    def as_text(self) -> str:
        verb = "waits" if len(self.held) == 1 else "wait"
        state = _ROOT_WORDS.get(self.root_state, self.root_state.value)
        first = self.held[0]
        example = " -> ".join(f"{m} {i}" for m, i in (first.key, *first.waits_for))
        return (
            f"  {len(self.held)} {self.model} {verb} for {len(self.roots)} {state} "
            f"{self.root_model}  (e.g. {example})"
        )


_ROOT_WORDS = {State.ERROR: "failing", State.BACKING_OFF: "backing-off", State.DEFERRED: "deferred"}


@dataclass(slots=True)
class PolicyStatus:
    """Per model with policies: how many objects are in each policy state, and the failures."""

    counts: dict[PolicyState, int] = field(default_factory=lambda: {s: 0 for s in POLICY_STATES})
    next_retry: float | None = None
    errors: list[tuple[int, str]] = field(default_factory=list)  # (id, policy_status)

    def add(self, id: int, record: Record, c: Classification) -> None:
        self.counts[c.policy_state] += 1
        self.next_retry = earliest((self.next_retry, c.policy_next_retry))
        if c.policy_state is PolicyState.ERROR:
            self.errors.append((id, str(record.get("policy_status") or "")))

    def as_json(self) -> dict[str, Any]:
        return {
            **{state.value: n for state, n in self.counts.items()},
            "next_retry": self.next_retry,
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
    dead_letter_topic: str | None = None
    dead_letters: int | None = None  # messages on the dead-letter topic (None: not read)

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "endpoint": self.endpoint,
            "problem": self.problem,
            "dead_letter_topic": self.dead_letter_topic,
            "dead_letters": self.dead_letters,
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
    failing: list[FailingGroup] = field(default_factory=list)
    held_back: list[HeldGroup] = field(default_factory=list)
    policies: dict[str, PolicyStatus] | None = None
    events: EventStatus | None = None
    runners: RunnerStatus | None = None  # with a store several runners share

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "models": {name: counts.as_json() for name, counts in self.models.items()},
            "blocked": [
                {"model": b.key[0], "id": b.key[1], "waits_for": [[m, i] for m, i in b.waits_for]}
                for b in self.blocked
            ],
            "failing": [g.as_json() for g in self.failing],
            "held_back": [g.as_json() for g in self.held_back],
        }
        if self.policies is not None:
            out["policies"] = {name: c.as_json() for name, c in self.policies.items()}
        if self.events is not None:
            out["events"] = self.events.as_json()
        if self.runners is not None:
            out["runners"] = {"leader": self.runners.leader, "leases": self.runners.leases}
        return out

    def as_text(self, now: float) -> str:
        lines = [_header("MODEL", STATES) + "  NEXT RETRY"]
        for name, m in self.models.items():
            lines.append(_row(name, m.counts.values()) + f"  {_retry_in(m.next_retry, now)}")
        _section(lines, "Failing, by message:", [g.as_text() for g in self.failing])
        _section(lines, "Held back, by what they wait for:", [g.as_text() for g in self.held_back])
        if self.policies is not None:
            lines.extend(["", _header("POLICIES", POLICY_STATES) + "  NEXT RETRY"])
            for name, p in self.policies.items():
                lines.append(_row(name, p.counts.values()) + f"  {_retry_in(p.next_retry, now)}")
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
            if self.events.dead_letters is not None:
                lines.append(
                    f"  dead letters: {self.events.dead_letters} on {self.events.dead_letter_topic}"
                )
        if self.runners is not None:
            lines.extend(["", *self.runners.as_lines()])
        return "\n".join(lines)


@dataclass(slots=True)
class RunnerStatus:
    """Who holds what, when several runners share the synchronizer (see `claims`)."""

    leader: str | None
    leases: dict[str, int]  # runner -> objects it holds a live lease on

    def as_lines(self) -> list[str]:
        lines = [f"Runners (leader: {self.leader or 'none now'}):"]
        if not self.leases:
            lines.append("  no object leases held")
        lines.extend(f"  {holder} holds {count}" for holder, count in self.leases.items())
        return lines


def collect_runner_status(leases: Any, name: str) -> RunnerStatus:
    """The leader and the live object leases per runner of the synchronizer `name`."""
    return RunnerStatus(leases.leader(name), leases.holders(name))


_HEADINGS = {"ok": "OK", "pending": "PENDING", "deferred": "DEFERRED", "held": "HELD",
             "backing_off": "BACKOFF", "error": "ERROR"}  # fmt: skip


def story_text(detail: Mapping[str, Any], now: float) -> str:
    """One object's whole story (`StatusReader.detail`) as `xsync status CONFIG MODEL ID`
    prints it: state, message, backoff, what it waits for and what waits for it, traceback."""
    o = detail["object"]
    backoff = detail["backoff"]
    lines = [f"{o['model']} {o['id']} ({o['name']}): {_STATE_WORDS.get(o['state'], o['state'])}"]
    lines.append(f"  backend_status: {detail['backend_status'] or '-'}")
    if backoff["failures"]:
        retry = _retry_in(o["next_retry"], now) if o["next_retry"] else "now"
        failures = "1 failure" if backoff["failures"] == 1 else f"{backoff['failures']} failures"
        lines.append(f"  backoff: {failures} in a row, next retry {retry}")
    policy = detail["policy"]
    if policy["code"]:  # 0: no policy has run (or none exists for the model)
        lines.append(f"  policy: {policy['status'] or '-'} (policy_code {policy['code']})")
    lines.append(f"  held back by: {_objects(detail['held_by'])}")
    lines.append(f"  links to (synced first): {_objects(detail['waits_for'])}")
    more = detail["waited_by_total"] - len(detail["waited_by"])
    waited = _objects(detail["waited_by"]) + (f" and {more} more" if more > 0 else "")
    lines.append(f"  linked from (synced after): {waited}")
    for title, key in (("traceback", "traceback"), ("policy traceback", "policy_traceback")):
        if detail.get(key):
            lines.append(f"  {title}:")
            lines.extend(f"    {line}" for line in str(detail[key]).splitlines())
    return "\n".join(lines)


def _objects(summaries: Sequence[Mapping[str, Any]]) -> str:
    if not summaries:
        return "nothing"
    return ", ".join(
        f"{s['model']} {s['id']} ({_STATE_WORDS.get(s['state'], s['state'])}"
        + (f": {s['message']}" if s["state"] == "error" and s["message"] else "")
        + ")"
        for s in summaries
    )


_STATE_WORDS = {"ok": "in sync", "pending": "pending", "deferred": "deferred", "held": "held back",
                "backing_off": "backing off", "error": "failing"}  # fmt: skip


def _section(lines: list[str], title: str, rows: list[str]) -> None:
    if not rows:
        return
    lines.extend(["", title, *rows[:GROUPS_SHOWN]])
    if len(rows) > GROUPS_SHOWN:
        lines.append(f"  ... and {len(rows) - GROUPS_SHOWN} more groups (--json lists them all)")


def _header(first: str, states: Sequence[State | PolicyState]) -> str:
    return f"{first:<24} " + " ".join(f"{_HEADINGS[s.value]:>8}" for s in states)


def _row(name: str, counts: Iterable[int]) -> str:
    return f"{name:<24} " + " ".join(f"{n:>8}" for n in counts)


def _retry_in(at: float | None, now: float) -> str:
    return f"in {max(0.0, at - now):.1f}s" if at is not None else "-"


def collect_policy_status(
    store: Store, models: Sequence[str], *, now: float
) -> dict[str, PolicyStatus]:
    """Per model with policies, its objects by policy state (`backend_state.classify`)."""
    out: dict[str, PolicyStatus] = {}
    for model in models:
        counts = PolicyStatus()
        for record in store.query(model, deleted=None):
            counts.add(int(record["id"]), record, classify(record, now))
        out[model] = counts
    return out


def collect_event_status(
    endpoint: str,
    group: str,
    topics: Sequence[str],
    *,
    timeout: float = 15.0,
    dead_letter_topic: str | None = None,
) -> EventStatus:
    """The group's committed offsets and lag per partition, read from the broker; a broker
    that cannot be reached is reported in `problem`, not raised, within about `timeout` s."""
    status = EventStatus(group, endpoint, dead_letter_topic=dead_letter_topic)
    where = f"cannot read the consumer group from {endpoint}"
    unreachable = _unreachable(endpoint)
    if unreachable is not None:
        status.problem = f"{where}: {unreachable}"
        return status
    result: list[Any] = []

    def read() -> None:
        try:
            from .engines.kafka_bus import read_group_offsets

            offsets = read_group_offsets(endpoint, group, topics)
            letters = (
                read_group_offsets(endpoint, group, [dead_letter_topic])
                if dead_letter_topic
                else None
            )
            result.append((offsets, letters))
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
    offsets: dict[tuple[str, int], tuple[int | None, int]] = result[0][0]
    letters: dict[tuple[str, int], tuple[int | None, int]] | None = result[0][1]
    if letters is not None:
        status.dead_letters = sum(end for _, end in letters.values())
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


@dataclass(frozen=True, slots=True)
class Observed:
    """One object as the groupings read it: `xsync status` and the UI build these alike."""

    key: Key
    state: State
    message: str  # the newest message of backend_status
    links: tuple[Key, ...]  # what it links to along the dependency graph
    next_retry: float | None
    deleted: bool


def observe(model: str, record: Record, links: LinkFields, c: Classification) -> Observed:
    return Observed(
        (model, int(record["id"])),
        c.state,
        last_message(record.get("backend_status")),
        tuple(links.links_of(model, record.get)),
        c.next_retry,
        bool(record.get("deleted")),
    )


def failing_groups(observed: Iterable[Observed]) -> list[FailingGroup]:
    """Objects in error, by model and message; the largest group first."""
    groups: dict[tuple[str, str], FailingGroup] = {}
    for o in observed:
        if o.state is State.ERROR:
            message = o.message or "(no message)"
            group = groups.setdefault((o.key[0], message), FailingGroup(o.key[0], message))
            group.ids.append(o.key[1])
    return sorted(groups.values(), key=lambda g: (-len(g.ids), g.model, g.message))


def held_groups(observed: Iterable[Observed]) -> tuple[list[Blocked], list[HeldGroup]]:
    """What the next pass would hold back (with its chain), and those grouped by root cause."""
    items: list[PlanItem] = []
    states: dict[Key, State] = {}
    for o in observed:
        states[o.key] = o.state
        if o.state is not State.OK and not o.deleted:
            items.append(PlanItem(o.key, o.links, _runnable(o.state, o.next_retry)))
    blocked = _blocked(items)
    return blocked, _held_groups(blocked, states)


def collect_status(
    store: Store, models: Sequence[str], links: LinkFields, *, now: float
) -> StatusReport:
    """Read the store and report on the objects of `models` (the observed ones)."""
    report = StatusReport()
    observed: list[Observed] = []
    for model in models:
        counts = ModelStatus()
        for record in store.query(model, deleted=None):
            if is_gone(record):
                continue  # done; waiting to be purged
            c = classify(record, now)
            counts.add(c)
            observed.append(observe(model, record, links, c))
        report.models[model] = counts
    report.failing = failing_groups(observed)
    report.blocked, report.held_back = held_groups(observed)
    return report


def _held_groups(blocked: list[Blocked], states: dict[Key, State]) -> list[HeldGroup]:
    groups: dict[tuple[str, str, State], HeldGroup] = {}
    for b in blocked:
        root = b.root
        state = states.get(root, State.PENDING)
        group = groups.setdefault((b.key[0], root[0], state), HeldGroup(b.key[0], root[0], state))
        group.held.append(b)
        group.roots.add(root[1])
    return sorted(groups.values(), key=lambda g: (-len(g.held), g.model, g.root_model))


def _runnable(state: State, next_retry: float | None) -> bool:
    """An object in error or waiting for its backoff is what others wait for."""
    return state is not State.ERROR and next_retry is None


def _blocked(items: Iterable[PlanItem]) -> list[Blocked]:
    # A dry run of the plan: what the next pass would hold back if every runnable object synced.
    execution = execute_plan(plan_sync(items), lambda key: Outcome.SYNCED, max_workers=1)
    return [
        Blocked(key, tuple(execution.waits_for(key)))
        for key, outcome in sorted(execution.outcomes.items())
        if outcome is Outcome.HELD
    ]
