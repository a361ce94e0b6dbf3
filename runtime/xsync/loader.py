"""Discover sync steps: every concrete `SyncStep` subclass in the `.py` files of a directory.

Files load in name order under a module name unique to their directory, so a `sync_site.py`
among the steps cannot collide with one among the policies. A class counts once, wherever
it was imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

from .policy import Policy
from .pullstep import PullStep
from .steps import SyncStep, is_step_class


class StepLoadError(Exception):
    """A step file that cannot be imported; the message names the file and the reason."""


def load_sync_steps(directory: str | Path) -> list[type[SyncStep]]:
    """The step classes found in `directory`, in file-name order then definition order."""
    found: list[type[SyncStep]] = []
    for module in load_modules(directory):
        for value in vars(module).values():
            if is_step_class(value) and value not in found:
                found.append(value)
    return found


def load_policies(directory: str | Path) -> list[type[Policy]]:
    """The model policies of `directory`: every `Policy` subclass, direct or indirect, that
    names its model in `model_name` (a subclass without one is a base for other policies)."""
    found: list[type[Policy]] = []
    for module in load_modules(directory):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Policy)
                and value is not Policy
                and value.model_name
                and value not in found
            ):
                found.append(value)
    return found


def load_pull_steps(directory: str | Path) -> list[type[PullStep]]:
    """The pull steps of `directory`: every `PullStep` subclass, direct or indirect, that has
    its own `pull_records` somewhere below the base (one without is a base for other steps)."""
    found: list[type[PullStep]] = []
    for module in load_modules(directory):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, PullStep)
                and value is not PullStep
                and value.pull_records is not PullStep.pull_records
                and value not in found
            ):
                found.append(value)
    return found


def defined_in(cls: type) -> str:
    """The file that defines `cls`, for messages that must name it."""
    module = sys.modules.get(cls.__module__)
    return str(getattr(module, "__file__", None) or cls.__module__)


def load_modules(
    directory: str | Path, *, accept: Callable[[Path], bool] | None = None
) -> list[ModuleType]:
    """Import each `.py` file of `directory` (not `__init__.py`, not `test*`)."""
    folder = Path(directory).resolve()
    if not folder.is_dir():
        raise StepLoadError(f"{folder}: not a directory")
    package = "xsync_user_" + hashlib.sha1(str(folder).encode()).hexdigest()[:12]
    modules: list[ModuleType] = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "__init__.py" or path.name.startswith("test"):
            continue
        if accept is not None and not accept(path):
            continue
        modules.append(_import(path, f"{package}.{path.stem}", folder))
    return modules


def _import(path: Path, name: str, folder: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StepLoadError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Steps may import helpers that sit next to them; the path is restored afterwards.
    sys.path.insert(0, str(folder))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - sys.exit() in a step file is its problem too
        del sys.modules[name]
        raise StepLoadError(import_failure(path, exc)) from None
    finally:
        try:
            sys.path.remove(str(folder))
        except ValueError:
            pass
    return module


def import_failure(path: Path, exc: BaseException) -> str:
    """One line saying why importing the user's `path` failed, with the line when known."""
    line = _line_in(exc, path)
    where = f"{path}:{line}" if line else str(path)
    if isinstance(exc, SystemExit):
        return f"{where}: the module exits while being imported (SystemExit: {exc.code})"
    detail = f": {exc}" if str(exc) else ""
    return f"{where}: {type(exc).__name__}{detail}"


def _line_in(exc: BaseException, path: Path) -> int | None:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
