"""The policy engine: runs model policies on create, update and delete of their models.

Selection follows XOS (reference section 7.3): live objects never policed get `handle_create`,
live objects changed since they were policed (`policed < updated` or `< changed_by_step`) get
`handle_update`, deleted objects not yet policed get `handle_delete`. The defects of section 11
are fixed here:

* every policy with `after_policy_save` gets it, not only the last one in the list;
* a failing object backs off exponentially like a sync error instead of being retried every
  5 s forever, and one failing policy does not keep the others for that object from running;
* an unknown model or an empty policy list cannot abort the pass.

Policy backoff state is the policy engine's part of `backend_register` (see `backend_state`),
which every other writer keeps, so it survives syncs and restarts alike.

Bookkeeping saves (`policed`, `policy_*`, the register) are made as the synchronizer with
explicit `update_fields`; none of those columns is an important change, so they re-trigger
neither sync nor policies. Saves made by handlers go through the policy-actor accessor and
stamp `changed_by_policy`, which makes the objects they touch due for sync.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Literal, Sequence

from .. import backend_state
from ..backend_state import POLICED, exception_message, policy_register
from ..backoff import BackoffPolicy, Clock, Rand, RetryBook, earliest, wall_clock
from ..bounded import call_user_code, time_limit
from ..tracebacks import user_traceback
from ..observability import LOGGER_NAME
from ..orm import acting_as
from ..authoring import Policy, optional_hook
from ..store.base import STORE_DOWN, PendingQuery, Record, Store

Key = tuple[str, int]
Action = Literal["create", "update", "delete"]
# Turns a store record of `model` into the object handlers receive (a policy-actor ORM object).
ObjectFactory = Callable[[str, Record], Any]

DONE = POLICED
DEFAULT_POLICY_TIMEOUT = 300.0


# The columns `awaits_delete_policy` reads (the sync engine reads no more of a deleted object
# before deciding whether it may be deleted yet).
DELETE_HOLD_COLUMNS = ("backend_need_delete_policy", "policed", "updated")


class PolicyOutcome(Enum):
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True)
class PolicyPassReport:
    """What one policy pass did: per object, the action taken and how it ended."""

    outcomes: dict[Key, tuple[Action, PolicyOutcome]] = field(default_factory=dict)
    next_retry: float | None = None  # earliest next_run of an object backing off
    seconds: float = 0.0

    @property
    def worked(self) -> int:
        """Objects whose handlers ran in this pass."""
        return len(self.outcomes)

    def note_retry(self, at: float) -> None:
        self.next_retry = earliest((self.next_retry, at))


class PolicyEngine:
    """Runs policy passes for a set of policy classes against a store. Reusable across passes.

    `accessor` is what handlers get as `model_accessor`: it must save as the "policy" actor.
    `wrap` turns records into the objects handlers receive (by default, the accessor's classes).
    """

    def __init__(
        self,
        store: Store,
        policies: Sequence[type[Policy]],
        *,
        accessor: Any,
        wrap: ObjectFactory | None = None,
        backoff: BackoffPolicy = BackoffPolicy(),
        clock: Clock = wall_clock,
        rand: Rand = random.random,
        log: logging.Logger | None = None,
        timeout: float = DEFAULT_POLICY_TIMEOUT,
    ) -> None:
        self.store = store
        self.accessor = accessor
        # Each handler call gets the policy's `timeout_seconds`, else this many seconds.
        self.timeout = timeout
        self.wrap: ObjectFactory = wrap or (
            lambda model, record: accessor.get_model_class(model).from_record(record)
        )
        self.retries = RetryBook(backoff, clock=clock, rand=rand)
        self.clock = clock
        self.log = log or logging.getLogger(LOGGER_NAME).getChild("policies")
        self.by_model: dict[str, list[type[Policy]]] = {}
        for policy in policies:
            assert policy.model_name, f"{policy.__name__} has no model_name"
            chain = self.by_model.setdefault(policy.model_name, [])
            if policy not in chain:
                chain.append(policy)

    @property
    def models(self) -> list[str]:
        """The models that have at least one policy, in load order."""
        return list(self.by_model)

    # --- the pass ------------------------------------------------------------------------

    def run_pass(self, stop: threading.Event | None = None) -> PolicyPassReport:
        """Create and update handlers for dirty objects, then delete handlers for deleted ones."""
        started = time.perf_counter()
        report = PolicyPassReport()
        # Both lists are read up front, as in XOS: handlers see the state the pass started from.
        work = [
            (model, record, query)
            for query in (PendingQuery.DIRTY_POLICIES, PendingQuery.DELETED_POLICIES)
            for model in self.by_model
            for record in self._pending(model, query)
        ]
        now = self.clock()
        for model, record, query in work:
            if stop is not None and stop.is_set():
                break
            key = (model, int(record["id"]))
            register = policy_register(record.get("backend_register"))
            if not self.retries.is_due(register, now):
                report.note_retry(register.next_run)
                continue
            action: Action = (
                "delete"
                if query is PendingQuery.DELETED_POLICIES
                else ("create" if not record.get("policed") else "update")
            )
            outcome = self._police(model, record, action)
            report.outcomes[key] = (action, outcome)
        report.seconds = time.perf_counter() - started
        return report

    def awaits_delete_policy(self, model: str, obj: Any) -> bool:
        """Whether the deleted `obj` must not be reaped yet: its delete policies have not run.

        Objects of models with policies here wait for them; `backend_need_delete_policy` makes
        an object wait even when its policies run elsewhere (another synchronizer).
        """
        if model not in self.by_model and not getattr(obj, "backend_need_delete_policy", False):
            return False
        policed, updated = getattr(obj, "policed", None), getattr(obj, "updated", None)
        return policed is None or (updated is not None and policed < updated)

    # --- one object ----------------------------------------------------------------------

    def _police(self, model: str, record: Record, action: Action) -> PolicyOutcome:
        obj = self.wrap(model, record)
        key = (model, int(record["id"]))
        errors: list[str] = []
        traces: list[str] = []
        # Logged with its traceback when it starts failing, not again on every retry.
        entering = record.get("policy_code") != backend_state.Code.ERROR
        for policy_class in self.by_model[model]:
            try:
                with acting_as("policy"):
                    self._call(policy_class, f"handle_{action}", obj, key)
            except Exception as exc:
                message = exception_message(exc)
                errors.append(message)
                trace = user_traceback(exc)
                if trace is not None:
                    traces.append(trace)
                extra = {
                    "model": model,
                    "id": key[1],
                    "policy": policy_class.__name__,
                    "action": action,
                    "error": message,
                }
                if entering and trace is not None:
                    extra["traceback"] = trace
                self.log.warning("policy failed", extra=extra)
        if errors:
            self._failed(key, record, errors, traces[0] if traces else None)
            return PolicyOutcome.FAILED
        if not self._done(key, obj, record):
            return PolicyOutcome.FAILED
        self._after_policy_save(model, obj)
        self.log.info(
            "policy", extra={"model": model, "id": key[1], "action": action, "outcome": DONE}
        )
        return PolicyOutcome.DONE

    def _done(self, key: Key, obj: Any, record: Record) -> bool:
        # Read from the object: a handler that saved it with always_update_timestamp moved
        # `updated`, and that change is its own, not one to police again.
        policed = max(
            _timestamp(getattr(obj, "updated", record.get("updated"))),
            _timestamp(getattr(obj, "changed_by_step", record.get("changed_by_step"))),
        )
        values = backend_state.policed(register=record.get("backend_register"), policed=policed)
        try:
            self._save(key, values)
        except STORE_DOWN:
            raise
        except Exception as exc:
            self.log.error(
                "could not save policed timestamp",
                extra={"model": key[0], "id": key[1], "error": exception_message(exc)},
            )
            return False
        for name in ("policed", "policy_code", "policy_status"):
            _set_quietly(obj, name, values[name])
        return True

    def _failed(self, key: Key, record: Record, errors: list[str], trace: str | None) -> None:
        values = backend_state.policy_failed(
            register=record.get("backend_register"),
            errors=errors,
            retries=self.retries,
            trace=trace,
        )
        try:
            self._save(key, values)
        except STORE_DOWN:
            raise
        except Exception as exc:
            # The object may be gone; if not, the next pass polices it again.
            self.log.warning(
                "could not save policy status",
                extra={"model": key[0], "id": key[1], "error": exception_message(exc)},
            )

    def _after_policy_save(self, model: str, obj: Any) -> None:
        for policy_class in self.by_model[model]:
            hook = optional_hook(policy_class, "after_policy_save")
            if hook is None:
                continue
            try:
                with acting_as("policy"):
                    self._call(
                        policy_class, "after_policy_save", obj, (model, getattr(obj, "id", 0))
                    )
            except Exception as exc:
                # policed is saved: the object is policed; report the hook, do not undo that.
                self.log.error(
                    "after_policy_save failed",
                    extra={
                        "model": model,
                        "id": getattr(obj, "id", None),
                        "policy": policy_class.__name__,
                        "error": exception_message(exc),
                    },
                )

    # --- helpers ---------------------------------------------------------------------------

    def _pending(self, model: str, query: PendingQuery) -> list[Record]:
        try:
            return self.store.pending(model, query)
        except STORE_DOWN:
            raise  # the store is gone, not one model: the runner waits for it
        except Exception as exc:
            # One model's query failing (a store restart) costs that model one pass.
            self.log.error(
                "fetching objects to police failed",
                extra={"model": model, "error": exception_message(exc)},
            )
            return []

    def _call(self, policy_class: type[Policy], method: str, obj: Any, key: Key) -> None:
        """A new `policy_class` and its `method(obj)`, bounded by the policy's time limit."""

        def call() -> None:
            # The policy's own __init__ is user code too: inside the limit.
            getattr(self._new(policy_class), method)(obj)

        call_user_code(
            call,
            seconds=time_limit(policy_class, self.timeout),
            what=f"{policy_class.__name__}.{method} {key[0]} {key[1]}",
        )

    def _new(self, policy_class: type[Policy]) -> Policy:
        return policy_class(
            model_accessor=self.accessor, log=self.log.getChild(policy_class.__name__)
        )

    def _save(self, key: Key, values: dict[str, Any]) -> None:
        self.store.update(key[0], key[1], values, actor="synchronizer", update_fields=list(values))


def _set_quietly(obj: Any, name: str, value: Any) -> None:
    try:
        setattr(obj, name, value)
    except Exception:  # noqa: BLE001 - keeping the in-memory copy current is a courtesy
        pass


def _timestamp(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
