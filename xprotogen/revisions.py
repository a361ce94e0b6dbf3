"""A set of model files as of one revision: files and folders on disk, or a git revision of them.

`xsgen breaking` compares two such sets; the store compares the one it was created with
(kept as text) with the one it is given. Files are read in the order the runtime reads a
models folder: `core.xproto` first, then by name.
"""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath
from typing import Sequence

from . import ast
from .diagnostics import Diagnostic, XprotoError
from .parser import parse_text, read_source
from .schema import Schema, build_schema

Sources = list[tuple[str, str]]  # (path as shown in findings, text)

GIT_TIMEOUT_SECONDS = 30


class RevisionError(Exception):
    """The files of a revision cannot be had (not a git checkout, unknown revision, ...)."""


def _ordered(paths: Sequence[str]) -> list[str]:
    return sorted(
        paths, key=lambda p: (PurePosixPath(p).name != "core.xproto", PurePosixPath(p).name, p)
    )


def files_on_disk(paths: Sequence[str | Path]) -> list[Path]:
    """`paths`, each folder replaced by the `.xproto` files under it, in reading order."""
    found: list[str] = []
    for path in map(Path, paths):
        (
            found.extend(str(p) for p in path.rglob("*.xproto"))
            if path.is_dir()
            else found.append(str(path))
        )
    return [Path(p) for p in _ordered(found)]


def read_on_disk(paths: Sequence[str | Path]) -> Sources:
    """The texts of the model files at `paths` (files or folders)."""
    return [(str(p), read_source(p)) for p in files_on_disk(paths)]


def read_at_revision(revision: str, paths: Sequence[str | Path]) -> Sources:
    """The texts the model files at `paths` had in git `revision` (files missing there are new).

    A folder stands for every `.xproto` file under it in that revision, so files deleted
    since then are part of the old set.
    """
    sources: Sources = []
    for path in map(Path, paths):
        top = _git(path if path.is_dir() else path.parent, "rev-parse", "--show-toplevel").strip()
        relative = path.resolve().relative_to(Path(top).resolve()).as_posix()
        _git(
            Path(top),
            "rev-parse",
            "--verify",
            "--quiet",
            f"{revision}^{{commit}}",
            what=f"unknown revision '{revision}'",
        )
        if path.is_dir():
            listed = _git(
                Path(top), "ls-tree", "-r", "--name-only", revision, "--", relative or "."
            ).splitlines()
            names = [n for n in listed if n.endswith(".xproto")]
        else:
            names = [relative]
        for name in names:
            try:
                text = _git(Path(top), "show", f"{revision}:{name}")
            except RevisionError:
                continue  # not in that revision: a new file
            sources.append((f"{revision}:{name}", text))
    order = _ordered([label for label, _ in sources])
    by_label = dict(sources)
    return [(label, by_label[label]) for label in order]


def schema_of(sources: Sources) -> Schema:
    """Parse and resolve the texts; every syntax error of every file in one `XprotoError`."""
    trees: list[ast.File] = []
    problems: list[Diagnostic] = []
    for label, text in sources:
        try:
            trees.append(parse_text(text, label))
        except XprotoError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise XprotoError(problems)
    return build_schema(trees)


def _git(where: Path, *args: str, what: str | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
        )
    except FileNotFoundError:
        raise RevisionError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise RevisionError(
            f"git {args[0]} took more than {GIT_TIMEOUT_SECONDS} s in {where}"
        ) from None
    if done.returncode != 0:
        message = what or (done.stderr.strip().splitlines() or [f"git {args[0]} failed"])[-1]
        raise RevisionError(f"{where}: {message}")
    return done.stdout
