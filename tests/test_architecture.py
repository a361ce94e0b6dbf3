"""The architecture as import contracts: the toolchain never imports the runtime, the runtime's
modules import one another without cycles, and the light import paths stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = (
    "The toolchain never imports the runtime",
    "No import cycles between the runtime's sibling modules",
)


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-logo", "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Every contract was read and checked (a renamed or dropped one would pass silently).
    for name in CONTRACTS:
        assert f"{name} KEPT" in done.stdout, done.stdout


def _modules_loaded_by(statement: str) -> set[str]:
    probe = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


@pytest.mark.parametrize(
    "statement",
    [
        "import xprotogen.targets.client",
        "import xprotogen.targets.scaffold",
        "from xprotogen.store_columns import column_for_field",
    ],
)
def test_toolchain_targets_load_neither_runtime_nor_sqlalchemy(statement: str) -> None:
    loaded = _modules_loaded_by(statement)
    heavy = sorted(m for m in loaded if m.split(".")[0] in {"xsync", "sqlalchemy"})
    assert heavy == []


@pytest.mark.parametrize(
    "statement",
    [
        "import xsync",
        "from xsync import SyncStep, Policy, PullStep, EventStep",
        "from xsync.store import Store, StoreError, Record",
    ],
)
def test_runtime_light_paths_do_not_load_the_sql_backend(statement: str) -> None:
    loaded = _modules_loaded_by(statement)
    assert "sqlalchemy" not in loaded
    assert "xsync.store.sql" not in loaded


def test_the_lazy_runtime_names_resolve() -> None:
    import xsync
    import xsync.store

    for name in xsync.__all__:
        assert getattr(xsync, name) is not None, name
    for name in xsync.store.__all__:
        assert getattr(xsync.store, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        xsync.Nothing  # noqa: B018


def test_the_served_methods_are_the_ones_the_proto_declares() -> None:
    """The .proto text (`xsgen proto`) and the core's method table come from one definition."""
    from xprotogen.core_models import BUILTIN_CORE_PATH
    from xprotogen.loader import load_schema
    from xprotogen.targets.proto import SERVICE_RPCS
    from xsync.grpc.protocol import MODEL_METHODS, protocol_for

    schema = load_schema([str(BUILTIN_CORE_PATH), str(ROOT / "examples/hello/hello.xproto")])
    protocol = protocol_for(schema)
    declared = {
        f"/{service}/{method.name}"
        for service in protocol.services
        for method in protocol._pool.FindServiceByName(service).methods
    }
    served = {api.path(prefix) for api in protocol.models.values() for prefix in MODEL_METHODS}
    served |= {f"/{service}/{name}" for service in protocol.services for name, _, _ in SERVICE_RPCS}
    assert served == declared
    hello = (
        protocol.models["Hello"]
        if "Hello" in protocol.models
        else next(iter(protocol.models.values()))
    )
    for prefix, (request, response) in MODEL_METHODS.items():
        method = protocol._pool.FindMethodByName(hello.path(prefix)[1:].replace("/", "."))
        assert method.input_type.full_name == protocol.type_of(hello, request).DESCRIPTOR.full_name
        assert (
            method.output_type.full_name == protocol.type_of(hello, response).DESCRIPTOR.full_name
        )
