"""Running protoc from grpcio-tools in this process, with its errors turned into exceptions.

protoc writes its complaints straight to file descriptor 2 from C++, so they are caught
by pointing that descriptor at a temporary file for the length of the call. A lock keeps
two threads from compiling (and redirecting fd 2) at once.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from importlib.resources import files
from pathlib import Path
from typing import Sequence

from .diagnostics import TargetError

_LOCK = threading.Lock()


class ProtoCompileError(TargetError):
    """protoc rejected the input; the message is protoc's own, one problem per line."""

    def __str__(self) -> str:
        return f"protoc rejected the generated files: {super().__str__()}"


def well_known_include() -> str:
    """The directory holding `google/protobuf/*.proto`, shipped inside grpcio-tools."""
    return str(files("grpc_tools").joinpath("_proto"))


def _mypy_grpc_plugin() -> str | None:
    found = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    if found.is_file():
        return str(found)
    return shutil.which("protoc-gen-mypy_grpc")


def run_protoc(arguments: Sequence[str]) -> None:
    """Run protoc with `arguments` (no program name); raise `ProtoCompileError` on failure."""
    from grpc_tools import protoc  # type: ignore[import-untyped]

    with _LOCK, tempfile.TemporaryFile(mode="w+b") as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(captured.fileno(), 2)
            code = protoc.main(["protoc", *arguments])
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        message = captured.read().decode("utf-8", "replace").strip()
    if code != 0:
        raise ProtoCompileError(message or f"protoc failed with exit code {code}")


def compile_protos(
    proto_dir: Path, proto_files: Sequence[str], out_dir: Path, *, typed_grpc: bool = True
) -> None:
    """Compile `proto_files` (relative to `proto_dir`) into `<name>_pb2.py`, `_pb2_grpc.py`, `_pb2.pyi`.

    With `typed_grpc`, mypy-protobuf's plugin also writes `_pb2_grpc.pyi` when it is installed.
    """
    arguments = [
        f"-I{proto_dir}",
        f"-I{well_known_include()}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
    ]
    plugin = _mypy_grpc_plugin() if typed_grpc else None
    if plugin is not None:
        arguments += [f"--plugin=protoc-gen-mypy_grpc={plugin}", f"--mypy_grpc_out={out_dir}"]
    run_protoc([*arguments, *proto_files])


def descriptor_set(texts: dict[str, str]) -> bytes:
    """A serialized `FileDescriptorSet` for the given proto sources (name -> text), imports included."""
    with tempfile.TemporaryDirectory(prefix="xsgen-proto-") as tmp:
        root = Path(tmp)
        for name, text in texts.items():
            (root / name).write_text(text, encoding="utf-8")
        out = root / "descriptors.bin"
        run_protoc(
            [
                f"-I{root}",
                f"-I{well_known_include()}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                *sorted(texts),
            ]
        )
        return out.read_bytes()
