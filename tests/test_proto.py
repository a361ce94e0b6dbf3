"""`xsgen proto`: the XOS-style API mapping, deterministic output, and every corpus service compiling."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORE_XPROTO, corpus_file, corpus_names, run_cli
from xprotogen.diagnostics import XprotoError
from xprotogen.loader import load_schema
from xprotogen.targets.proto import (
    LIFECYCLE_BASE,
    SPILL_BASE,
    build_proto_api,
    render_proto_files,
    write_proto,
)

SERVICES = [n for n in corpus_names() if n != "core"]


@pytest.fixture(scope="module")
def core_proto() -> str:
    return render_proto_files(build_proto_api(load_schema([CORE_XPROTO])))["core.proto"]


def message_body(proto: str, name: str) -> str:
    found = re.search(rf"^message {name} \{{\n(.*?)^\}}", proto, re.S | re.M)
    assert found, f"no message {name}"
    return found.group(1)


def test_links_map_to_id_fields_numbered_as_xosgenx(core_proto: str) -> None:
    slice_ = message_body(core_proto, "Slice")
    assert "  int32 id = 1;\n" in slice_
    assert "  optional int32 site_id = 106;\n" in slice_
    assert "  repeated int32 availableNetworks_ids = 1005;\n" in slice_  # reference 6.1's real line
    network = message_body(core_proto, "Network")
    assert "  repeated int32 permitted_slices_ids = 118;\n" in network
    assert re.search(
        r"^  repeated int32 slices_ids = 1\d\d\d;$", message_body(core_proto, "Site"), re.M
    )


def test_scalars_are_optional_and_timestamps_are_double(core_proto: str) -> None:
    slice_ = message_body(core_proto, "Slice")
    assert "  optional double created = 2;\n" in slice_
    assert "  optional string backend_status = 9;\n" in slice_
    assert "  optional bool deleted = 11;\n" in slice_
    assert "  optional string name = 101;\n" in slice_


def test_every_model_has_list_message_and_rpcs_and_xosbase_is_skipped(core_proto: str) -> None:
    models = re.findall(r"^message (\w+) \{", core_proto, re.M)
    assert "XOSBase" not in models
    assert "  repeated Slice items = 1;\n" in message_body(core_proto, "Slices")
    for rpc in (
        "rpc ListSlice(google.protobuf.Empty) returns (Slices);",
        "rpc FilterSlice(xsync.Query) returns (Slices);",
        "rpc GetSlice(xsync.ID) returns (Slice);",
        "rpc CreateSlice(Slice) returns (Slice);",
        "rpc UpdateSlice(UpdateSliceRequest) returns (Slice);",
        "rpc DeleteSlice(xsync.ID) returns (google.protobuf.Empty);",
        "rpc Watch(xsync.WatchRequest) returns (stream xsync.Change);",
        "rpc GetVersion(google.protobuf.Empty) returns (xsync.Version);",
    ):
        assert rpc in core_proto
    model_messages = [m for m in models if "  int32 id = 1;\n" in message_body(core_proto, m)]
    assert len(model_messages) == 34 and model_messages == sorted(model_messages)


def test_model_without_xosbase_gets_lifecycle_fields_in_reserved_range(tmp_path: Path) -> None:
    source = tmp_path / "solo.xproto"
    source.write_text("message Solo { required string name = 1; optional bool deleted = 2; }\n")
    proto = render_proto_files(build_proto_api(load_schema([source])))["solo.proto"]
    body = message_body(proto, "Solo")
    assert f"  optional double created = {LIFECYCLE_BASE + 2};\n" in body
    assert f"  optional string backend_status = {LIFECYCLE_BASE + 9};\n" in body
    # Its own `deleted` wins over the lifecycle one; `name = 1` clashes with id and moves.
    assert "  optional bool deleted = 2;\n" in body and body.count(" deleted = ") == 1
    assert f"  optional string name = {SPILL_BASE};\n" in body


def test_clashing_message_names_are_reported_against_the_source(tmp_path: Path) -> None:
    source = tmp_path / "clash.xproto"
    source.write_text(
        "message Site { required string name = 2; }\nmessage Sites { required string name = 2; }\n"
    )
    with pytest.raises(XprotoError, match="list message 'Sites' of model 'Site'|'Sites'"):
        build_proto_api(load_schema([source]))
    result = run_cli("xprotogen", "proto", str(source), "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "clash.xproto:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b"):
        result = run_cli(
            "xprotogen",
            "proto",
            str(CORE_XPROTO),
            str(corpus_file("volt")),
            "-o",
            str(tmp_path / run),
        )
        assert result.returncode == 0, result.stderr
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert outputs[0] == outputs[1]
    assert {
        "core.proto",
        "volt.proto",
        "core_pb2.py",
        "core_pb2.pyi",
        "core_pb2_grpc.py",
        "volt_pb2_grpc.py",
    } <= set(outputs[0])


def test_compile_failure_leaves_output_directory_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xprotogen.compile_proto as compile_proto

    def fail(*_args: object, **_kwargs: object) -> None:
        raise compile_proto.ProtoCompileError("core.proto:1:1: boom")

    monkeypatch.setattr(compile_proto, "compile_protos", fail)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(compile_proto.ProtoCompileError):
        write_proto(load_schema([CORE_XPROTO]), out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_protoc_errors_become_exceptions_with_protocs_message(tmp_path: Path) -> None:
    from xprotogen.compile_proto import ProtoCompileError, compile_protos

    (tmp_path / "bad.proto").write_text('syntax = "proto3";\nmessage A { nosuchtype x = 1; }\n')
    with pytest.raises(ProtoCompileError, match="nosuchtype"):
        compile_protos(tmp_path, ["bad.proto"], tmp_path)


def test_missing_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run_cli(
        "xprotogen", "proto", str(tmp_path / "nope.xproto"), "-o", str(tmp_path / "out")
    )
    assert result.returncode == 1
    assert "nope.xproto" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_service_after_core_compiles_and_imports(name: str, tmp_path: Path) -> None:
    output = write_proto(load_schema([CORE_XPROTO, corpus_file(name)]), tmp_path)
    modules = sorted(m[: -len(".py")] for m in output.modules if m.endswith(".py"))
    assert any(m.endswith("_pb2_grpc") for m in modules)
    assert all((tmp_path / f"{m}.pyi").exists() for m in modules if m.endswith("_pb2"))
    # A fresh interpreter: generated modules register in protobuf's process-wide pool.
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\n"
    result = subprocess.run(
        [sys.executable, "-c", code, *modules],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
