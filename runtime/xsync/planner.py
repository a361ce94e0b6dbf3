"""Model dependencies + object links -> a plan: which pending object waits for which.

XOS compares every pair of pending objects (reference 4.6). Here each object names the
objects it links to, so the plan costs O(objects + links): an edge exists only where a
link reaches another pending object, directly or through objects that are not pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

Key = tuple[str, int]
N = TypeVar("N", bound=Hashable)
# The links of an object that is not pending, or None if it is unknown; used to see
# through up-to-date objects to pending ones further down a chain.
LinkResolver = Callable[[Key], Sequence[Key] | None]
# {"Model": [["Peer", "src_field", "dst_field"], ...]}, the model-deps JSON.
ModelDeps = Mapping[str, Sequence[Sequence[str]]]


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One pending object: its key, the objects it links to, and whether it may run now.

    An item that is not `runnable` (it is backing off) is still part of the plan, so that
    the objects that depend on it are held back rather than synced too early.
    """

    key: Key
    links: tuple[Key, ...] = ()
    runnable: bool = True


@dataclass(slots=True)
class Plan:
    """A dependency DAG over pending objects.

    `after[k]` lists the items that must finish successfully before `k` starts; `before[k]`
    the items that wait for `k`. Both hold only keys that have such items (most objects of a
    large pass have none, and a list each would cost more than the rest of their plan):
    ask `firsts` and `thens`. `order` is one valid sequential order. `broken_cycles` holds
    the keys whose incoming edges were dropped to break a link cycle.
    """

    items: dict[Key, PlanItem]
    after: dict[Key, list[Key]]
    before: dict[Key, list[Key]]
    order: list[Key] = field(default_factory=list)
    broken_cycles: list[Key] = field(default_factory=list)

    def firsts(self, key: Key) -> Sequence[Key]:
        """The items that must finish successfully before `key` starts."""
        return self.after.get(key, ())

    def thens(self, key: Key) -> Sequence[Key]:
        """The items that wait for `key`."""
        return self.before.get(key, ())


@dataclass(frozen=True, slots=True)
class LinkFields:
    """Per model, the link fields worth following: (`src_field`, peer model) of each model-deps edge."""

    by_model: dict[str, tuple[tuple[str, str], ...]]

    @classmethod
    def from_model_deps(cls, deps: ModelDeps) -> LinkFields:
        by_model: dict[str, tuple[tuple[str, str], ...]] = {}
        for model, edges in deps.items():
            fields: dict[str, str] = {}
            for edge in edges:
                # Self-links (a ServiceInstance and its subscriber) do not order objects,
                # as in XOS; following them would turn every chain into a cycle.
                if len(edge) >= 2 and edge[0] != model:
                    fields.setdefault(edge[1], edge[0])
            by_model[model] = tuple(fields.items())
        return cls(by_model)

    def for_model(self, model: str) -> tuple[tuple[str, str], ...]:
        return self.by_model.get(model, ())

    def links_of(self, model: str, get: Callable[[str], object]) -> tuple[Key, ...]:
        """The keys an object links to; `get(name)` reads one of its columns or attributes.

        A link to one object is `<field>_id`; a many-to-many link is `<field>_ids`.
        """
        found: list[Key] = []
        for field_name, peer in self.for_model(model):
            single = get(field_name + "_id")
            if isinstance(single, int) and not isinstance(single, bool) and single:
                found.append((peer, single))
                continue
            many = get(field_name + "_ids")
            if isinstance(many, (list, tuple)):
                found.extend((peer, i) for i in many if isinstance(i, int) and i)
        return tuple(found)


def model_order(deps: ModelDeps) -> list[str]:
    """Models with dependencies first (a model after every model it links to); stable, cycles broken by name."""
    names = list(
        dict.fromkeys([*deps.keys(), *(e[0] for edges in deps.values() for e in edges if e)])
    )
    peers = {m: {e[0] for e in deps.get(m, ()) if e and e[0] != m} for m in names}
    return _topological(names, {m: sorted(p) for m, p in peers.items()})


def plan_sync(
    items: Iterable[PlanItem], *, deletion: bool = False, resolve: LinkResolver | None = None
) -> Plan:
    """Order `items` so that each runs after the pending objects it links to.

    With `deletion`, the order is reversed: an object is deleted after every pending object
    that links to it. `resolve` lets the planner see through objects that are not pending
    (an up-to-date Slice between a pending Instance and its pending Site).
    """
    by_key: dict[Key, PlanItem] = {}
    for item in items:
        by_key.setdefault(item.key, item)
    reach = _Reach(by_key, resolve)
    after: dict[Key, list[Key]] = {}
    before: dict[Key, list[Key]] = {}
    for key, item in by_key.items():
        for target in dict.fromkeys(t for link in item.links for t in reach.pending_from(link)):
            if target == key:
                continue
            first, then = (key, target) if deletion else (target, key)
            after.setdefault(then, []).append(first)
            before.setdefault(first, []).append(then)
    plan = Plan(items=by_key, after=after, before=before)
    _order_and_break_cycles(plan)
    return plan


class _Reach:
    """Which pending objects a link reaches, looking through non-pending ones (memoized)."""

    def __init__(self, pending: Mapping[Key, PlanItem], resolve: LinkResolver | None) -> None:
        self._pending = pending
        self._resolve = resolve
        self._memo: dict[Key, tuple[Key, ...]] = {}

    def pending_from(self, key: Key) -> tuple[Key, ...]:
        if key in self._pending:
            return (key,)
        if self._resolve is None:
            return ()
        return self._through(key, set())

    def _through(self, key: Key, visiting: set[Key]) -> tuple[Key, ...]:
        known = self._memo.get(key)
        if known is not None:
            return known
        if key in visiting:
            # A cycle among up-to-date objects: what lies beyond is found from its first visit.
            return ()
        visiting.add(key)
        assert self._resolve is not None
        found: dict[Key, None] = {}
        for link in self._resolve(key) or ():
            if link in self._pending:
                found[link] = None
            else:
                found.update(dict.fromkeys(self._through(link, visiting)))
        visiting.discard(key)
        result = tuple(found)
        self._memo[key] = result
        return result


def _order_and_break_cycles(plan: Plan) -> None:
    """Kahn's algorithm; when only cycles are left, drop the incoming edges of the smallest key."""
    plan.order = _topological(
        list(plan.items),
        plan.after,
        on_break=lambda key: _drop_incoming(plan, key),
        successors=plan.before,
    )


def _drop_incoming(plan: Plan, key: Key) -> None:
    for first in plan.after.pop(key, ()):
        plan.before[first].remove(key)
        if not plan.before[first]:
            del plan.before[first]
    plan.broken_cycles.append(key)


def _topological(
    nodes: Sequence[N],
    after: Mapping[N, Sequence[N]],
    on_break: Callable[[N], None] | None = None,
    successors: Mapping[N, Sequence[N]] | None = None,
) -> list[N]:
    """A stable topological order of `nodes` given `after[node]` (nodes that come first).

    When only cycles remain, the smallest remaining node is released (after `on_break`).
    `successors`, the same edges the other way (nodes of `nodes` only), saves building them.
    """
    indegree = {node: 0 for node in nodes}
    if successors is None:
        built: dict[N, list[N]] = {}
        for node in nodes:
            for first in after.get(node, ()):
                if first in indegree:
                    built.setdefault(first, []).append(node)
        successors = built
    for node, firsts in after.items():
        if node in indegree:
            indegree[node] = sum(1 for first in firsts if first in indegree)
    ready = [node for node in nodes if indegree[node] == 0]
    done: set[N] = set()
    cursor = 0
    leftovers: list[N] | None = None
    while True:
        while cursor < len(ready):
            node = ready[cursor]
            cursor += 1
            done.add(node)
            for then in successors.get(node, ()):
                indegree[then] -= 1
                if indegree[then] == 0:
                    ready.append(then)
        if len(ready) == len(indegree):
            return ready
        if leftovers is None:
            leftovers = sorted(n for n in nodes if n not in done)  # type: ignore[type-var]
        victim = next(n for n in leftovers if n not in done and indegree[n] > 0)
        if on_break is not None:
            on_break(victim)
        indegree[victim] = 0
        ready.append(victim)
