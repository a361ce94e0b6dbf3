"""Random requests, well-formed and malformed, with random credentials, at a live core.

Whatever arrives, the core answers with a documented status, logs no traceback, stays up,
and an account whose role is `user` or `read-only` (or no account at all) never changes a
feedback field.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Iterator

import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core_support import ACCOUNTS, LiveCore
from xsync.login_throttle import LoginThrottle

DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,  # a method that does not exist
}
WRITERS = {"root", "hello-sync"}  # the roles that may write feedback: admin, synchronizer
SHOP_FIELDS = ["name", "rank", "big", "ratio", "open", "visitors", "secret_state", "label"]
FEEDBACK = ["backend_status", "backend_code", "backend_register", "policy_status", "secret_state"]
TOKEN = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12)


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCore]:
    live = LiveCore(tmp_path_factory.mktemp("fuzz"), throttle=LoginThrottle(base=0.001, cap=0.004))
    for name in ("first", "second"):
        live.client("root").create("Shop", {"name": name})
    yield live
    live.close()


# --- requests -----------------------------------------------------------------------------


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=30)
    )
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)


value_json = st.one_of(
    json_values().map(lambda v: json.dumps(v)),
    TOKEN,
    st.sampled_from([3, 2_000, 100_000]).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 20_000).map(lambda depth: "[" * depth + "]" * depth),
    st.just('{"a": 1}'),
)
field_name = st.one_of(st.sampled_from([*SHOP_FIELDS, "id", *FEEDBACK, "shelves"]), TOKEN)
query_element = st.fixed_dictionaries(
    {
        "field": field_name,
        "op": st.sampled_from(["", "EQUAL", "IN", "GREATER_THAN", "ISNULL", "LIKE", "in"]),
        "value_json": value_json,
    }
)
feedback_values = st.fixed_dictionaries(
    {},
    optional={
        "backend_status": st.text(max_size=10),
        "backend_code": st.integers(-5, 5),
        "policy_status": st.text(max_size=10),
        "secret_state": st.text(max_size=10),
    },
)
ordinary_values = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
        | st.text(max_size=30),
        "rank": st.integers(-(2**31), 2**31 - 1),
        "big": st.integers(-(2**63), 2**63 - 1),
        "ratio": st.floats(-1e3, 1e3, width=32) | st.floats(width=32),
        "open": st.booleans(),
        "visitors": st.integers(0, 2**32 - 1),
    },
)
shop_values = feedback_values | st.builds(lambda a, b: {**a, **b}, ordinary_values, feedback_values)


@st.composite
def requests(draw: st.DrawFn, core: LiveCore) -> tuple[str, bytes, bool]:
    """(method path, request bytes, whether the reply is a stream)."""
    protocol = core.protocol
    api = protocol.models[draw(st.sampled_from(["Shop", "Shelf"]))]
    kind = draw(
        st.sampled_from(
            ["Get", "Delete", "Purge", "Filter", "List", "Create", "BulkCreate", "Update"]
            + ["Pending", "Watch", "GetVersion", "Nonsense", "Garbage"]
            + ["Update", "Create", "Forge", "Forge", "Forge"]  # writes that could forge feedback
            + ["Filter", "Filter"]  # the richest request
        )
    )
    if kind == "Garbage":
        method = draw(st.sampled_from(["Get", "Create", "Update", "Filter"]))
        return api.path(method), draw(st.binary(max_size=64)), False
    if kind == "Nonsense":
        return f"/{api.service}/{draw(TOKEN)}", b"", False
    if kind == "Watch":
        request = protocol.common("WatchRequest")(
            after=draw(st.integers(-(2**63), 2**63 - 1)), once=True
        )
        timeout = draw(st.one_of(st.none(), st.floats(-1, 0.05), st.just(math.nan)))
        if timeout is not None:
            request.timeout = timeout
        return protocol.watch_path(), request.SerializeToString(), True
    if kind == "GetVersion":
        return protocol.version_path(), b"", False
    if kind in ("Get", "Delete", "Purge"):
        request = protocol.common("ID")(
            id=draw(st.integers(-(2**31), 2**31 - 1) | st.sampled_from([1, 2, 3])),
            include_deleted=draw(st.booleans()),
        )
    elif kind == "Filter":
        request = protocol.common("Query")(
            filters=draw(st.lists(query_element, max_size=3)),
            excludes=draw(st.lists(query_element, max_size=2)),
            deleted=draw(st.integers(0, 100)),
            order_by=draw(
                st.lists(field_name.map(lambda f: draw(st.sampled_from(["", "-"])) + f), max_size=2)
            ),
        )
        if draw(st.booleans()):
            request.limit = draw(st.integers(-(2**31), 2**31 - 1))
    elif kind == "Pending":
        request = protocol.common("PendingRequest")(kind=draw(st.integers(0, 9)))
    elif kind == "List":
        request = protocol.empty()
    elif kind in ("Create", "BulkCreate"):
        items = [_message(api.message, draw(shop_values)) for _ in range(draw(st.integers(1, 3)))]
        if kind == "Create":
            request = items[0]
        else:
            request = api.plural()
            request.items.extend(items)
    elif kind == "Forge":  # a plausible update of feedback fields alone, of a real object
        values = draw(feedback_values.filter(bool))
        request = api.update_request()
        request.item.CopyFrom(_message(api.message, values))
        request.item.id = draw(st.sampled_from([1, 2]))
        request.fields.extend(values)
        return api.path("Update"), request.SerializeToString(), False
    else:  # Update
        values = draw(shop_values)
        request = api.update_request()
        request.item.CopyFrom(_message(api.message, values))
        request.item.id = draw(st.sampled_from([1, 2, 1, 2, 3, 0, 2**31 - 1]))
        fields = list(values) if draw(st.booleans()) else draw(st.lists(field_name, max_size=3))
        request.fields.extend(fields)
        request.update_fields.extend(draw(st.lists(field_name, max_size=2)))
    return api.path(kind), request.SerializeToString(), False


def _message(cls: Any, values: dict[str, Any]) -> Any:
    message = cls()
    for key, value in values.items():
        try:
            setattr(message, key, value)
        except (AttributeError, TypeError, ValueError):
            pass  # a field this model lacks, or a value its type cannot hold
    return message


# Mostly the accounts that must not write feedback: they are what the property is about.
right = st.sampled_from(["alice", "alice", "viewer", "root", "hello-sync"]).map(
    lambda name: (name, ACCOUNTS[name][0])
)
who = st.one_of(
    right,
    right,
    right,  # mostly real accounts, so that requests get past the door
    st.tuples(st.sampled_from(sorted(ACCOUNTS)), st.sampled_from(["guess", "", "x" * 300])),
    st.tuples(TOKEN, TOKEN),
    st.none(),
)
actors = st.one_of(
    st.none(),
    st.sampled_from(["user", "synchronizer", "policy"]),
    st.just("synchronizer"),  # what a forger would send
    st.sampled_from(["root"]),
    TOKEN,
)


def feedback_state(core: LiveCore) -> dict[tuple[str, int], tuple[Any, ...]]:
    state = {}
    for model in ("Shop", "Shelf"):
        for row in core.store.query(model, deleted=None):
            state[(model, row["id"])] = tuple(row.get(f) for f in FEEDBACK)
    return state


# --- the property ---------------------------------------------------------------------------


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_requests_get_documented_statuses_and_never_forge_feedback(
    core: LiveCore,
    data: st.DataObject,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    method, body, streams = data.draw(requests(core))
    credentials, actor = data.draw(who), data.draw(actors)
    metadata: list[tuple[str, str]] = []
    if credentials is not None:
        metadata += [("username", credentials[0]), ("password", credentials[1])]
    if actor is not None:
        metadata.append(("actor", actor))
    before = feedback_state(core)
    caplog.set_level(logging.WARNING)
    code = _call(core, method, body, streams, tuple(metadata))
    event(f"{method.rsplit('/', 1)[1][:8]} {code.name}")
    assert code in DOCUMENTED, code
    writer = (
        credentials is not None
        and credentials[0] in WRITERS
        and credentials[1] == ACCOUNTS[credentials[0]][0]
    )
    if not writer:
        after = feedback_state(core)
        assert {k: v for k, v in after.items() if k in before} == before
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, [r.getMessage() for r in problems]
    assert "Traceback" not in capfd.readouterr().err
    assert list(core.version().models)  # still up


def _call(core: LiveCore, method: str, body: bytes, streams: bool, metadata: Any) -> Any:
    try:
        if streams:
            call = core.channel.unary_stream(
                method, request_serializer=bytes, response_deserializer=bytes
            )
            list(call(body, metadata=metadata, timeout=10))
        else:
            call = core.channel.unary_unary(
                method, request_serializer=bytes, response_deserializer=bytes
            )
            call(body, metadata=metadata, timeout=10)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK
