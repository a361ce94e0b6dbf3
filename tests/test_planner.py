"""The planner and executor on plain data: order, concurrency and failure propagation."""

from __future__ import annotations

import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from xsync.executor import Outcome, execute_plan
from xsync.planner import Key, LinkFields, PlanItem, model_order, plan_sync


def _run_recording(fail: set[Key], deferred: set[Key] = frozenset()):  # type: ignore[no-untyped-def]
    log: list[tuple[str, Key]] = []
    lock = threading.Lock()

    def run_one(key: Key) -> Outcome:
        with lock:
            log.append(("start", key))
        with lock:
            log.append(("end", key))
        if key in fail:
            return Outcome.FAILED
        if key in deferred:
            return Outcome.DEFERRED
        return Outcome.SYNCED

    return run_one, log


def test_link_fields_follow_src_field_and_drop_self_links() -> None:
    deps = {
        "Slice": [["Site", "site", "slices"], ["User", "creator", "slices"]],
        "ServiceInstance": [["ServiceInstance", "x", "y"]],
    }
    fields = LinkFields.from_model_deps(deps)
    assert fields.for_model("Slice") == (("site", "Site"), ("creator", "User"))
    record = {"site_id": 4, "creator_id": None, "creator_ids": [5, 6]}
    assert fields.links_of("Slice", record.get) == (("Site", 4), ("User", 5), ("User", 6))
    assert fields.for_model("ServiceInstance") == ()
    assert fields.for_model("Unknown") == ()


def test_model_order_puts_dependencies_first() -> None:
    deps = {"Instance": [["Slice", "slice", "i"]], "Slice": [["Site", "site", "s"]], "Site": []}
    assert model_order(deps) == ["Site", "Slice", "Instance"]


def test_sync_plan_orders_dependencies_first_and_deletion_reverses_it() -> None:
    site, slice_, instance = ("Site", 1), ("Slice", 7), ("Instance", 3)
    items = [PlanItem(instance, (slice_,)), PlanItem(slice_, (site,)), PlanItem(site)]
    assert plan_sync(items).order == [site, slice_, instance]
    assert plan_sync(items, deletion=True).order == [instance, slice_, site]


def test_plan_sees_through_objects_that_are_not_pending() -> None:
    # Instance -> Slice (up to date) -> Site (pending): the instance must wait for the site.
    site, instance = ("Site", 1), ("Instance", 3)
    links = {("Slice", 7): [site]}
    plan = plan_sync([PlanItem(instance, (("Slice", 7),)), PlanItem(site)], resolve=links.get)
    assert plan.firsts(instance) == [site]


def test_link_cycle_is_broken_not_fatal() -> None:
    a, b = ("A", 1), ("B", 1)
    plan = plan_sync([PlanItem(a, (b,)), PlanItem(b, (a,))])
    assert sorted(plan.order) == [a, b]
    assert plan.broken_cycles == [a]
    execution = execute_plan(plan, lambda key: Outcome.SYNCED, max_workers=2)
    assert set(execution.outcomes.values()) == {Outcome.SYNCED}


def test_failure_holds_back_only_dependents_and_names_the_chain() -> None:
    site1, site2 = ("Site", 1), ("Site", 2)
    slice7, slice8, inst = ("Slice", 7), ("Slice", 8), ("Instance", 1)
    items = [
        PlanItem(site1),
        PlanItem(site2),
        PlanItem(slice7, (site2,)),
        PlanItem(slice8, (site1,)),
        PlanItem(inst, (slice7,)),
    ]
    run_one, _ = _run_recording(fail={site2})
    execution = execute_plan(plan_sync(items), run_one, max_workers=3)
    assert execution.outcomes == {
        site1: Outcome.SYNCED,
        site2: Outcome.FAILED,
        slice8: Outcome.SYNCED,
        slice7: Outcome.HELD,
        inst: Outcome.HELD,
    }
    assert execution.waits_for(inst) == [slice7, site2]
    assert execution.root_cause(inst) == site2


def test_object_that_is_not_runnable_is_skipped_and_holds_its_dependents() -> None:
    site, slice_ = ("Site", 2), ("Slice", 7)
    plan = plan_sync([PlanItem(site, runnable=False), PlanItem(slice_, (site,))])
    ran: list[Key] = []
    execution = execute_plan(plan, lambda key: ran.append(key) or Outcome.SYNCED, max_workers=2)  # type: ignore[func-returns-value]
    assert ran == []
    assert execution.outcomes == {site: Outcome.SKIPPED, slice_: Outcome.HELD}


def test_stop_lets_running_objects_finish_and_starts_no_more() -> None:
    stop = threading.Event()
    keys = [("M", i) for i in range(20)]

    def run_one(key: Key) -> Outcome:
        stop.set()
        time.sleep(0.01)
        return Outcome.SYNCED

    execution = execute_plan(
        plan_sync(PlanItem(k) for k in keys), run_one, max_workers=2, stop=stop
    )
    assert 1 <= len(execution.outcomes) <= 2
    assert set(execution.outcomes.values()) == {Outcome.SYNCED}


# --- properties over random model graphs, objects, links and failures -----------------


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[PlanItem], dict[Key, list[Key]], set[Key], int]:
    """Models 0..m-1 may link only to lower-numbered models, so object links are acyclic."""
    n_models = draw(st.integers(1, 5))
    model_edges = {
        m: draw(st.lists(st.integers(0, m - 1), max_size=2, unique=True)) if m else []
        for m in range(n_models)
    }
    counts = [draw(st.integers(1, 6)) for _ in range(n_models)]
    links: dict[Key, list[Key]] = {}
    pending: list[Key] = []
    for m in range(n_models):
        for i in range(counts[m]):
            key = (f"M{m}", i)
            targets = []
            for peer in model_edges[m]:
                target = draw(st.one_of(st.none(), st.integers(0, counts[peer] - 1)))
                if target is not None:
                    targets.append((f"M{peer}", target))
            links[key] = targets
            if draw(st.booleans()):
                pending.append(key)
    failing = (
        set(draw(st.lists(st.sampled_from(pending), unique=True, max_size=4))) if pending else set()
    )
    workers = draw(st.integers(1, 4))
    # The store returns objects in any order; the plan, not the input order, must keep them right.
    items = [PlanItem(key, tuple(links[key])) for key in draw(st.permutations(pending))]
    return items, links, failing, workers


def _pending_deps(key: Key, links: dict[Key, list[Key]], pending: set[Key]) -> set[Key]:
    """Every pending object `key` reaches through links, through non-pending ones too."""
    seen: set[Key] = set()
    stack = list(links[key])
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(links[node])
    return seen & pending


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_properties_of_a_pass(
    scenario: tuple[list[PlanItem], dict[Key, list[Key]], set[Key], int],
) -> None:
    items, links, failing, workers = scenario
    pending = {item.key for item in items}
    non_pending_links = {k: v for k, v in links.items() if k not in pending}
    active: set[Key] = set()
    started: dict[Key, int] = {}
    ended: dict[Key, int] = {}
    clock = [0]
    lock = threading.Lock()

    def run_one(key: Key) -> Outcome:
        with lock:
            assert key not in active, "an object is in two workers at once"
            assert key not in started, "an object ran twice"
            active.add(key)
            clock[0] += 1
            started[key] = clock[0]
        time.sleep(0)  # let other workers interleave
        with lock:
            active.discard(key)
            clock[0] += 1
            ended[key] = clock[0]
        return Outcome.FAILED if key in failing else Outcome.SYNCED

    plan = plan_sync(items, resolve=non_pending_links.get)
    execution = execute_plan(plan, run_one, max_workers=workers)

    assert set(execution.outcomes) == pending
    for key in pending:
        deps = _pending_deps(key, links, pending)
        failed_below = deps & failing
        if key in started:
            # Nothing is synced before anything it depends on.
            assert all(
                execution.outcomes[d] is Outcome.SYNCED and ended[d] < started[key] for d in deps
            )
        if not failed_below:
            # Every object whose dependencies don't fail is synced (or fails itself).
            assert key in started
        else:
            # Failures reach dependents, and only them.
            assert execution.outcomes[key] is Outcome.HELD
            assert execution.root_cause(key) in failed_below
    for key, outcome in execution.outcomes.items():
        if outcome is Outcome.HELD:
            assert _pending_deps(key, links, pending) & failing


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_deletion_plan_runs_dependents_first(
    scenario: tuple[list[PlanItem], dict[Key, list[Key]], set[Key], int],
) -> None:
    items, links, _, workers = scenario
    pending = {item.key for item in items}
    position: dict[Key, int] = {}
    lock = threading.Lock()

    def run_one(key: Key) -> Outcome:
        with lock:
            position[key] = len(position)
        return Outcome.SYNCED

    execute_plan(plan_sync(items, deletion=True), run_one, max_workers=workers)
    for item in items:
        for target in item.links:
            if target in pending:
                assert position[item.key] < position[target]


# --- the reference's section 10 checklist (scheduler and loading), on the real core models ----

import functools  # noqa: E402

from conftest import CORE_XPROTO  # noqa: E402
from xprotogen.loader import load_schema  # noqa: E402
from xprotogen.targets.deps import model_deps  # noqa: E402


@functools.lru_cache(maxsize=1)
def core_links() -> LinkFields:
    return LinkFields.from_model_deps(model_deps(load_schema([CORE_XPROTO])))


def item(model: str, id: int, **links: int | None) -> PlanItem:
    record = {f"{name}_id": value for name, value in links.items()}
    return PlanItem((model, id), core_links().links_of(model, record.get))


def test_checklist_12_core_model_graph_orders_site_before_slice() -> None:
    order = model_order(model_deps(load_schema([CORE_XPROTO])))
    assert order.index("Site") < order.index("Slice") < order.index("ComputeServiceInstance")


def test_checklist_16_17_same_object_is_one_plan_node_and_different_ones_are_two() -> None:
    assert list(plan_sync([item("Slice", 4), item("Slice", 4)]).items) == [("Slice", 4)]
    assert len(plan_sync([item("Slice", 4), item("Slice", 5)]).items) == 2


def test_checklist_18_models_without_a_path_are_not_ordered() -> None:
    plan = plan_sync([item("Port", 1), item("NetworkParameter", 2)])
    assert plan.firsts(("Port", 1)) == () and plan.firsts(("NetworkParameter", 2)) == ()
    assert plan.after == {} and plan.before == {}  # keys with no edges take no room


def test_checklist_19_20_a_slice_waits_only_for_its_own_site() -> None:
    plan = plan_sync([item("Site", 1), item("Site", 2), item("Slice", 3, site=2)])
    assert plan.firsts(("Slice", 3)) == [("Site", 2)]
    assert plan.thens(("Site", 2)) == [("Slice", 3)] and plan.thens(("Site", 1)) == ()


def test_checklist_21_distant_dependency_through_a_chain() -> None:
    csi = item("ComputeServiceInstance", 9, slice=5)
    plan = plan_sync([csi, item("Site", 1), item("Slice", 5, site=1)])
    assert plan.order == [("Site", 1), ("Slice", 5), ("ComputeServiceInstance", 9)]
    # The same with the slice up to date: the instance still waits for the site.
    plan = plan_sync([csi, item("Site", 1)], resolve={("Slice", 5): [("Site", 1)]}.get)
    assert plan.firsts(("ComputeServiceInstance", 9)) == [("Site", 1)]


def test_checklist_22_independent_objects_are_not_ordered() -> None:
    plan = plan_sync([item("Image", 1), item("Slice", 2, site=None), item("Site", 3)])
    assert all(not firsts for firsts in plan.after.values())


def test_checklist_23_service_instance_after_its_owner_and_deleted_before_it() -> None:
    for items in (
        [item("ServiceInstance", 2, owner=1), item("Service", 1)],
        [item("Service", 1), item("ServiceInstance", 2, owner=1)],
    ):
        assert plan_sync(items).order == [("Service", 1), ("ServiceInstance", 2)]
        assert plan_sync(items, deletion=True).order == [("ServiceInstance", 2), ("Service", 1)]


class _RecordingBuffer:
    """A `Settle` over plain data: outcomes wait until flushed; some saves fail."""

    def __init__(self, size: int, failing_saves: set[Key]) -> None:
        self.size = size
        self.failing_saves = failing_saves
        self.lock = threading.Lock()
        self.waiting: list[Key] = []
        self.saved: set[Key] = set()
        self.flushes = 0

    def add(self, key: Key) -> None:
        with self.lock:
            self.waiting.append(key)

    def due(self) -> bool:
        with self.lock:
            return len(self.waiting) >= self.size

    def flush(self) -> set[Key]:
        with self.lock:
            batch, self.waiting = self.waiting, []
            self.flushes += bool(batch)
            self.saved.update(k for k in batch if k not in self.failing_saves)
            return {k for k in batch if k in self.failing_saves}


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.integers(1, 8), st.data())
def test_buffered_outcomes_are_saved_before_any_dependent_starts(
    scenario: tuple[list[PlanItem], dict[Key, list[Key]], set[Key], int],
    batch_size: int,
    data: st.DataObject,
) -> None:
    items, links, failing, workers = scenario
    pending = {item.key for item in items}
    some = st.lists(st.sampled_from(sorted(pending)), max_size=3) if pending else st.just([])
    failing_saves, refused = set(data.draw(some)), set(data.draw(some))
    buffer = _RecordingBuffer(batch_size, failing_saves)
    started: set[Key] = set()
    prepared: set[Key] = set()
    lock = threading.Lock()

    def prepare(batch: list[Key]) -> set[Key]:
        with lock:
            assert not prepared & set(batch), "an object was prepared twice"
            prepared.update(batch)
        return set(batch) - refused

    def run_one(key: Key) -> Outcome:
        assert key in prepared and key not in refused
        deps = _pending_deps(key, links, pending)
        with buffer.lock:
            # Whatever it waits for is on record before it starts.
            assert deps <= buffer.saved, f"{key} started before {deps - buffer.saved} was saved"
        with lock:
            started.add(key)
        time.sleep(0)
        buffer.add(key)
        return Outcome.FAILED if key in failing else Outcome.SYNCED

    plan = plan_sync(items, resolve={k: v for k, v in links.items() if k not in pending}.get)
    execution = execute_plan(
        plan,
        run_one,
        max_workers=workers,
        prepare=prepare,
        prepare_batch=data.draw(st.integers(1, 5)),
        settle=buffer,
    )
    buffer.flush()  # the caller saves what is left
    assert set(execution.outcomes) == pending
    for key in pending:
        outcome = execution.outcomes[key]
        if key in refused:
            # Refused when prepared, or held back before that by what it waits for.
            assert key not in started and outcome in (Outcome.ELSEWHERE, Outcome.HELD)
        elif key in started and key in failing:
            assert outcome is Outcome.FAILED
        elif key in started and key in failing_saves and plan.thens(key):
            # A sync that could not be recorded holds back what waits for it.
            assert outcome is Outcome.FAILED
        elif key in started:
            assert outcome is Outcome.SYNCED
            assert key in buffer.saved or key in failing_saves
        else:
            assert outcome is Outcome.HELD
    # Every started object's outcome was written, in batches.
    assert buffer.saved == started - failing_saves


class _QuickCalls:
    """A supervisor whose calls never overrun and always look quick; counts its checks."""

    def __init__(self) -> None:
        self.checks = 0

    def next_deadline(self) -> float | None:
        return None

    def overdue(self) -> list[Key]:
        return []

    def take_over(self, key: Key) -> Outcome | None:
        return None

    def longest_call(self) -> float:
        self.checks += 1
        return 0.0


def test_the_check_for_slow_calls_backs_off_while_calls_stay_quick() -> None:
    # Each check takes the interpreter lock from the worker; at one every 2 ms a pass of
    # quick calls ran 18 % slower with 4 workers allowed than with 1.
    items = [PlanItem(("M", i)) for i in range(400)]
    threads: set[int] = set()

    def run_one(key: Key) -> Outcome:
        threads.add(threading.get_ident())
        started = time.perf_counter()
        while time.perf_counter() - started < 0.001:
            pass
        return Outcome.SYNCED

    supervisor = _QuickCalls()
    started = time.monotonic()
    result = execute_plan(plan_sync(items), run_one, max_workers=4, supervisor=supervisor)
    elapsed = time.monotonic() - started
    assert set(result.outcomes.values()) == {Outcome.SYNCED}
    assert len(threads) == 1  # quick calls: no worker added
    # Backing off to one check in 64 ms: a few checks to get there, then one per 64 ms
    # (half that allowed here); at a steady 2 ms it would be one per 2-5 ms.
    assert supervisor.checks <= 8 + elapsed / 0.032, (supervisor.checks, elapsed)
