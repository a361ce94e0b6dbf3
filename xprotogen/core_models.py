"""The built-in XOS core models (`core.xproto`, shipped as package data) and when to read them.

Service models derive from core's (`XOSBase`, `Service`, `ServiceInstance`, ...), but a user
starting out has only their service file. So every command reads the built-in core first
whenever the given files use a name it defines that they do not define themselves, exactly as
if `core.xproto` had been listed first. A given file that defines those models itself (a
core.xproto of its own) takes the place of the built-in one, since nothing is left undefined.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

from . import ast

# "auto": read the built-in core when the files need it; "always": read it first whatever
# the files hold (`xsgen deps --with-core`, xosgenx's `core.xproto FILE`); "never": the files alone.
CoreMode = Literal["auto", "always", "never"]
CORE_FILE_NAME = "core.xproto"
BUILTIN_CORE_PATH = Path(__file__).with_name(CORE_FILE_NAME)


# What a model needs to record a sync on its objects (XOSBase carries them): without them a
# synced object still looks outdated, so a sync step would sync it again on every pass.
SYNC_RECORD_FIELDS = ("updated", "enacted", "backend_code", "backend_status")


def missing_sync_record_fields(field_names: Iterable[str]) -> list[str]:
    """The fields of `SYNC_RECORD_FIELDS` a model with `field_names` lacks."""
    have = set(field_names)
    return [name for name in SYNC_RECORD_FIELDS if name not in have]


def builtin_core_text() -> str:
    """The source of the built-in core, as `xsgen core` prints it."""
    return BUILTIN_CORE_PATH.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def builtin_core() -> ast.File:
    """The parsed built-in core; its spans name the installed file."""
    from .parser import parse_file

    return parse_file(BUILTIN_CORE_PATH)


def is_builtin_core(path: str) -> bool:
    """Whether `path` (a span's file) is the built-in core rather than one of the user's files."""
    return path == str(BUILTIN_CORE_PATH)


def with_core(files: Sequence[ast.File], mode: CoreMode) -> list[ast.File]:
    """`files`, with the built-in core first when `mode` asks for it."""
    if mode == "always" or (mode == "auto" and needs_builtin_core(files)):
        return [builtin_core(), *files]
    return list(files)


@lru_cache(maxsize=1)
def builtin_core_names() -> frozenset[str]:
    """The model names the built-in core defines."""
    return frozenset(_defined_names([builtin_core()]))


def needs_builtin_core(files: Sequence[ast.File]) -> bool:
    """Whether the files use a model name that only the built-in core defines."""
    defined = set(_defined_names(files))
    core_names = builtin_core_names()
    return any(name not in defined and name in core_names for name in _referenced_names(files))


def _messages(files: Iterable[ast.File]) -> Iterator[ast.Message]:
    for file in files:
        for item in file.items:
            if isinstance(item, ast.Message):
                yield item


def _defined_names(files: Iterable[ast.File]) -> Iterator[str]:
    for message in _messages(files):
        yield message.name


def _referenced_names(files: Iterable[ast.File]) -> Iterator[str]:
    """Bases, link peers and link-through models, unqualified (core's package is empty)."""
    for message in _messages(files):
        for base in message.bases or ():
            yield base.name
        for field in message.fields:
            if isinstance(field, ast.LinkField):
                yield field.peer.name
                if field.through is not None:
                    yield field.through.name
