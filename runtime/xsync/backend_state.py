"""An object's backend state: the codes, what each outcome writes, and how a record is read.

The lifecycle columns the synchronizer owns (reference sections 2.2-2.3) are written here and
nowhere else, and read back by one function, `classify`, which `xsync status`, the UI and the
metrics all use, so that they always agree:

- `backend_code` and `policy_code` hold a `Code`;
- `backend_status` is XOS's " // "-separated list of the newest two messages;
- `backend_register` is one JSON object with a part per writer: the sync engine's backoff in
  XOS's flat keys (`failures`, `exponent`, `next_run`, `last_failure`, `last_success`), the
  policy engine's under `"policy"`, the object that holds this one back under `"held_by"`,
  and where the last failure happened in the user's code under `"traceback"` (sync) and
  `"policy_traceback"` (policies): `backend_status` stays the one-line message XOS writes.
  Each writer replaces its own part and keeps every other key as it found it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, Iterable, Mapping, Sequence

from .backoff import Register, RetryBook
from .store.base import PendingQuery, Store
from .store.lifecycle import dirty_in_python

Key = tuple[str, int]

SEPARATOR = " // "
MAX_STATUS = 1024
MAX_REGISTER = 1024  # backend_register's max_length in core.xproto
OK = "OK"
FRESH_STATUS = "Provisioning in progress"  # the model default: nothing has been tried yet
POLICED = "done"


class Code(IntEnum):
    """`backend_code` and `policy_code`, as XOS defines them."""

    PENDING = 0
    OK = 1
    ERROR = 2


class State(str, Enum):
    """Where an object stands with the sync engine; exactly one applies.

    `error`: its own last attempt failed (it may also be waiting for its backoff);
    `held`: an object it links to failed, so it was not tried; `backing_off`: it must wait
    for its backoff before it is tried; `deferred`: a step raised `DeferredException`;
    `pending`: anything else still to sync or delete; `ok`: nothing to do.
    """

    OK = "ok"
    PENDING = "pending"
    DEFERRED = "deferred"
    HELD = "held"
    BACKING_OFF = "backing_off"
    ERROR = "error"


class PolicyState(str, Enum):
    """Where an object stands with its model policies; exactly one applies."""

    OK = "ok"
    PENDING = "pending"
    BACKING_OFF = "backing_off"
    ERROR = "error"


STATES: tuple[State, ...] = tuple(State)
POLICY_STATES: tuple[PolicyState, ...] = tuple(PolicyState)


# --- backend_status --------------------------------------------------------------------------


def append_status(current: str | None, message: str) -> str:
    """Add `message` to a status the way XOS does (reference 2.2).

    The status is a " // "-separated list; a message already in it is not repeated, only
    the last two entries are kept, and the text is cut to 1024 characters.
    """
    parts = status_entries(current)
    if message not in parts:
        parts.append(message)
    return SEPARATOR.join(parts[-2:])[:MAX_STATUS]


def status_entries(status: str | None) -> list[str]:
    """The messages of a `backend_status`, oldest first."""
    return [part for part in (status or "").split(SEPARATOR) if part]


def last_message(status: str | None) -> str:
    """The newest entry of a status list."""
    return (status or "").split(SEPARATOR)[-1]


def exception_message(exc: BaseException) -> str:
    """The text XOS records for a failure: the message, or the exception's name if it has none."""
    text = str(exc)
    return text if text else type(exc).__name__


def held_message(model: str, id: int, cause: str) -> str:
    """The status of an object held back because `model` `id` failed; XOS's wording."""
    return f"Failed due to error in model {model} id {id}: {cause}"


# --- backend_register ------------------------------------------------------------------------

_SYNC_KEYS = ("failures", "exponent", "next_run", "last_failure", "last_success")
_POLICY_KEY = "policy"
_HELD_KEY = "held_by"
_TRACEBACK_KEY = "traceback"
_POLICY_TRACEBACK_KEY = "policy_traceback"
# What a successful sync clears: the object it was held by, the last failure's traceback.
_ENDED_BY_SUCCESS = frozenset((_HELD_KEY, _TRACEBACK_KEY))


@dataclass(frozen=True, slots=True)
class BackendRegister:
    """A parsed `backend_register`; anything unreadable (the model default is "{}") is empty."""

    data: Mapping[str, Any]
    # `sync`, worked out once (the planner and a success both ask).
    _sync: Register | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: object) -> BackendRegister:
        if isinstance(text, BackendRegister):
            return text  # parsed already
        try:
            data = json.loads(text) if isinstance(text, str) and text else {}
        except ValueError:
            data = {}
        return cls(data if isinstance(data, dict) else {})

    def to_json(self) -> str:
        data = self.data if isinstance(self.data, dict) else dict(self.data)
        return json.dumps(data, sort_keys=True)

    @property
    def sync(self) -> Register:
        if self._sync is None:
            object.__setattr__(self, "_sync", _register_from(self.data))
        assert self._sync is not None
        return self._sync

    @property
    def policy(self) -> Register:
        inner = self.data.get(_POLICY_KEY)
        return _register_from(inner) if isinstance(inner, dict) else Register()

    @property
    def held_by(self) -> Key | None:
        value = self.data.get(_HELD_KEY)
        if (
            isinstance(value, list)
            and len(value) == 2
            and isinstance(value[0], str)
            and _as_int(value[1], -1) >= 0
        ):
            return (value[0], int(value[1]))
        return None

    @property
    def traceback(self) -> str | None:
        """Where the last sync failure happened in the user's code (`tracebacks.user_traceback`)."""
        return _text(self.data.get(_TRACEBACK_KEY))

    @property
    def policy_traceback(self) -> str | None:
        return _text(self.data.get(_POLICY_TRACEBACK_KEY))

    def with_traceback(self, key: str, trace: str | None) -> BackendRegister:
        """With `trace` under `key`, cut (innermost frames kept) so the register stays within
        its column (`MAX_REGISTER`): a traceback never costs the save of the failure."""
        without = self._without(key)
        if trace is None:
            return without
        room = MAX_REGISTER - len(without._with({key: ""}).to_json())
        lines = trace.splitlines()
        while lines:
            text = "\n".join(lines)
            if len(json.dumps(text)) - 2 <= room:
                return without._with({key: text})
            # Drop the outermost line; the last (the exception) is cut at the end instead.
            lines = ["...", *lines[2:]] if len(lines) > 2 else [lines[-1][: max(0, room // 2)]]
            if lines == [""]:
                break
        return without

    def with_sync(self, register: Register) -> BackendRegister:
        return self._with(_register_json(register))

    def with_policy(self, register: Register | None) -> BackendRegister:
        if register is None:
            return self._without(_POLICY_KEY)
        return self._with({_POLICY_KEY: _register_json(register)})

    def with_held_by(self, key: Key | None) -> BackendRegister:
        if key is None:
            return self._without(_HELD_KEY)
        return self._with({_HELD_KEY: [key[0], key[1]]})

    def _with(self, values: Mapping[str, Any]) -> BackendRegister:
        return BackendRegister({**self.data, **values})

    def _without(self, key: str) -> BackendRegister:
        return BackendRegister({k: v for k, v in self.data.items() if k != key})


def sync_register(backend_register: object) -> Register:
    """The sync engine's backoff kept in a `backend_register` (fresh if none)."""
    return BackendRegister.parse(backend_register).sync


def next_sync_run(backend_register: object) -> float:
    """`sync_register(backend_register).next_run`, without building the register: a pass
    asks it of every pending object, and keeps only this of each until its batch runs."""
    try:
        data = json.loads(backend_register) if isinstance(backend_register, str) else None
    except ValueError:
        return 0.0
    found = _as_float(data.get("next_run")) if isinstance(data, dict) else 0.0
    return found if found else 0.0  # one shared zero for the many objects not backing off


def policy_register(backend_register: object) -> Register:
    """The policy engine's backoff kept in a `backend_register` (fresh if none)."""
    return BackendRegister.parse(backend_register).policy


def register_json(register: Register) -> str:
    """A `backend_register` holding only the sync engine's `register` (fixtures, benchmarks)."""
    return BackendRegister({}).with_sync(register).to_json()


def _register_json(register: Register) -> dict[str, Any]:
    # `exponent` is what XOS's get_backend_details() shows; keep it for that reader.
    return {
        "failures": register.failures,
        "exponent": register.failures,
        "next_run": register.next_run,
        "last_failure": register.last_failure,
        "last_success": register.last_success,
    }


def _register_from(data: Mapping[str, Any]) -> Register:
    return Register(
        failures=max(0, _as_int(data.get("failures"), 0)),
        next_run=_as_float(data.get("next_run")),
        last_failure=_as_float(data.get("last_failure")),
        last_success=_as_float(data.get("last_success")),
    )


# --- what each outcome writes ----------------------------------------------------------------
# Each function takes the object's current values and returns the columns to save.


def synced(
    *, register: object, enacted: float, retries: RetryBook, now: float | None = None
) -> dict[str, Any]:
    """The step code ran to the end: in sync as of `enacted`, its backoff over."""
    current = BackendRegister.parse(register)
    # Built in one dict, not through the `with_` copies: every object a pass syncs comes here.
    data = {k: v for k, v in current.data.items() if k not in _ENDED_BY_SUCCESS}
    data.update(_register_json(retries.after_success(current.sync, now)))
    return {
        "enacted": enacted,
        "backend_status": OK,
        "backend_code": int(Code.OK),
        "backend_register": BackendRegister(data).to_json(),
    }


def failed(
    *,
    status: object,
    register: object,
    message: str,
    retries: RetryBook,
    now: float | None = None,
    innocuous: bool = False,
    trace: str | None = None,
) -> dict[str, Any]:
    """A step raised: an error, and the next attempt waits for the backoff.

    `innocuous` (the step raised `InnocuousException`): the same, but code OK, as XOS writes
    it for a failure that is not an error. `trace`: where in the user's code it happened."""
    current = BackendRegister.parse(register)
    after = current.with_sync(retries.after_failure(current.sync, now)).with_held_by(None)
    after = after.with_traceback(_TRACEBACK_KEY, trace)
    return {
        "backend_status": append_status(_text(status), message),
        "backend_code": int(Code.OK if innocuous else Code.ERROR),
        "backend_register": after.to_json(),
    }


def deferred(*, status: object, register: object, message: str) -> dict[str, Any]:
    """A step raised `DeferredException`: no error, no backoff, tried again next pass."""
    values: dict[str, Any] = {
        "backend_status": append_status(_text(status), message),
        "backend_code": int(Code.PENDING),
    }
    current = BackendRegister.parse(register)
    if current.held_by is not None:
        values["backend_register"] = current.with_held_by(None).to_json()
    return values


def held_back(
    *, status: object, register: object, code: object, cause: Key, reason: str
) -> dict[str, Any]:
    """The object was not tried because `cause` failed with `reason`.

    Held objects are waiting, not failing: code 0, and their own backoff is left alone.
    Returns only what changes (often nothing: a held object is held pass after pass).
    """
    values: dict[str, Any] = {}
    new_status = append_status(_text(status), held_message(cause[0], cause[1], reason))
    if new_status != status:
        values["backend_status"] = new_status
    if code != Code.PENDING:
        values["backend_code"] = int(Code.PENDING)
    current = BackendRegister.parse(register)
    if current.held_by != cause:
        values["backend_register"] = current.with_held_by(cause).to_json()
    return values


def policed(*, register: object, policed: float) -> dict[str, Any]:
    """Every policy of the object ran: policed as of `policed`, the policy backoff over."""
    values: dict[str, Any] = {
        "policed": policed,
        "policy_code": int(Code.OK),
        "policy_status": POLICED,
    }
    current = BackendRegister.parse(register)
    if _POLICY_KEY in current.data or _POLICY_TRACEBACK_KEY in current.data:
        after = current.with_policy(None).with_traceback(_POLICY_TRACEBACK_KEY, None)
        values["backend_register"] = after.to_json()
    return values


def policy_failed(
    *,
    register: object,
    errors: Sequence[str],
    retries: RetryBook,
    now: float | None = None,
    trace: str | None = None,
) -> dict[str, Any]:
    """Some policy raised: a policy error, and the next attempt waits for the policy backoff."""
    current = BackendRegister.parse(register)
    after = current.with_policy(retries.after_failure(current.policy, now))
    after = after.with_traceback(_POLICY_TRACEBACK_KEY, trace)
    return {
        "policy_code": int(Code.ERROR),
        "policy_status": SEPARATOR.join(dict.fromkeys(errors))[:MAX_STATUS],
        "backend_register": after.to_json(),
    }


def retry_now(*, register: object) -> dict[str, Any]:
    """A person asked for the object to be tried at once: both backoffs end now."""
    current = BackendRegister.parse(register)
    after = current.with_sync(RetryBook.clear(current.sync))
    if _POLICY_KEY in current.data:
        after = after.with_policy(RetryBook.clear(current.policy))
    return {"backend_register": after.to_json()}


# --- reading a record ------------------------------------------------------------------------

_LIFECYCLE_DEFAULTS: dict[str, object] = {
    "deleted": False,
    "enacted": None,
    "updated": None,
    "changed_by_policy": None,
    "lazy_blocked": False,
    "no_sync": False,
    "policed": None,
    "changed_by_step": None,
    "no_policy": False,
}


@dataclass(frozen=True, slots=True)
class Classification:
    """An object's state with the sync engine and with its policies, and when each is retried
    next if it waits for a backoff (None when it does not)."""

    state: State
    next_retry: float | None
    policy_state: PolicyState
    policy_next_retry: float | None


def classify(record: Mapping[str, Any], now: float) -> Classification:
    """The state of the object `record` (a store record, or any mapping of its columns)."""
    register = BackendRegister.parse(record.get("backend_register"))
    sync_retry = _next_retry(register.sync, now)
    policy_retry = _next_retry(register.policy, now)
    return Classification(
        _sync_state(record, register, sync_retry), sync_retry,
        _policy_state(record, policy_retry), policy_retry,
    )  # fmt: skip


def _sync_state(
    record: Mapping[str, Any], register: BackendRegister, next_retry: float | None
) -> State:
    if not needs_sync(record):
        return State.OK
    if record.get("backend_code") == Code.ERROR:
        return State.ERROR
    if register.held_by is not None:
        return State.HELD
    if next_retry is not None:
        return State.BACKING_OFF
    newest = last_message(_text(record.get("backend_status")))
    if record.get("backend_code") == Code.PENDING and newest not in ("", FRESH_STATUS, OK):
        return State.DEFERRED
    return State.PENDING


def _policy_state(record: Mapping[str, Any], next_retry: float | None) -> PolicyState:
    if not needs_policy(record):
        return PolicyState.OK
    if record.get("policy_code") == Code.ERROR:
        return PolicyState.ERROR
    if next_retry is not None:
        return PolicyState.BACKING_OFF
    return PolicyState.PENDING


def _next_retry(register: Register, now: float) -> float | None:
    return None if RetryBook().is_due(register, now) else register.next_run


def is_gone(record: Mapping[str, Any]) -> bool:
    """Deleted and already removed from the backend: only the reaper still has business with it."""
    return bool(record.get("deleted")) and bool(record.get("backend_need_reap"))


def needs_sync(record: Mapping[str, Any]) -> bool:
    """Pending for the sync pass (the store's own predicate) or for the deletion pass."""
    row = {key: record.get(key, default) for key, default in _LIFECYCLE_DEFAULTS.items()}
    if row["deleted"]:
        return True
    return dirty_in_python(row, PendingQuery.DIRTY_OBJECTS)


def needs_policy(record: Mapping[str, Any]) -> bool:
    """Pending for the policy engine: never policed, changed since, or deleted and not policed."""
    row = {key: record.get(key, default) for key, default in _LIFECYCLE_DEFAULTS.items()}
    query = PendingQuery.DELETED_POLICIES if row["deleted"] else PendingQuery.DIRTY_POLICIES
    return dirty_in_python(row, query)


def count_states(store: Store, models: Sequence[str], now: float) -> dict[tuple[str, str], int]:
    """(model, sync state) -> how many objects of `models` are in it, as `xsync status` counts
    them (objects already deleted and gone are not counted)."""
    counts: dict[tuple[str, str], int] = {}
    for model in models:
        states, _ = tally(
            classify(record, now)
            for record in store.query(model, deleted=None)
            if not is_gone(record)
        )
        counts.update(((model, state.value), n) for state, n in states.items())
    return counts


def tally(classified: Iterable[Classification]) -> tuple[dict[State, int], dict[PolicyState, int]]:
    """How many objects are in each sync state and each policy state."""
    states = {state: 0 for state in STATES}
    policies = {state: 0 for state in POLICY_STATES}
    for c in classified:
        states[c.state] += 1
        policies[c.policy_state] += 1
    return states, policies


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _as_float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
