"""A caller whose password is already proven gets a unary handler (grpcio reads its body
first): the login, the throttle and the role checks must hold exactly as on the first call."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest

from core_support import LiveCore, credentials
from xsync.login_throttle import LoginThrottle, account_key, peer_key

THROTTLE_BASE = 0.3


@pytest.fixture
def throttle() -> LoginThrottle:
    return LoginThrottle(base=THROTTLE_BASE, cap=0.6)


@pytest.fixture
def core(tmp_path: Path, throttle: LoginThrottle) -> Iterator[LiveCore]:
    running = LiveCore(tmp_path, throttle=throttle)
    yield running
    running.close()


def test_a_wrong_password_after_a_proven_one_is_refused_and_counted(
    core: LiveCore, throttle: LoginThrottle
) -> None:
    assert list(core.version(metadata=credentials("alice")).models)  # proven from now on
    wrong = (("username", "alice"), ("password", "alice-pw "))
    with pytest.raises(grpc.RpcError) as raised:
        core.version(metadata=wrong)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert throttle.failures(account_key("alice")) == 1
    assert throttle.failures(peer_key("127.0.0.1")) == 1
    # The proven password still works, but from a peer with a failure it waits its turn.
    started = time.perf_counter()
    assert list(core.version(metadata=credentials("alice")).models)
    assert time.perf_counter() - started >= 0.8 * THROTTLE_BASE
    assert throttle.failures(account_key("alice")) == 0  # a success resets the count


def test_a_proven_callers_role_and_body_are_still_checked(core: LiveCore) -> None:
    api = core.protocol.models["Shop"]
    assert list(core.version(metadata=credentials("viewer")).models)  # proven
    with pytest.raises(grpc.RpcError) as raised:
        core.unary(api.path("Create"), api.message)(
            api.message(name="x"), metadata=credentials("viewer"), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "read-only" in str(raised.value.details())
    raw: Any = core.channel.unary_unary(api.path("Get"), request_serializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as raised:
        raw(b"\xff\xff\xff", metadata=credentials("viewer"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "cannot parse the request"
    assert core.store.query("Shop") == []
