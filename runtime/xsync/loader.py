"""Discover the four kinds of step: the concrete classes in the `.py` files of a directory.

One set of rules for sync steps, policies, pull steps and event steps: files load in name
order (not `__init__.py`, `_*.py` or `test*.py`) under a module name unique to their
directory, so a `sync_site.py` among the steps cannot collide with one among the policies;
every subclass of the kind's base in a file's namespace counts, once, wherever it was
imported, in definition order; a class that does not say what it works on is a base for
other classes (see `authoring`). A file that cannot be imported is one `StepLoadError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, TypeVar

from .authoring import EventStep, Policy, PullStep, SyncStep, UserCode

T = TypeVar("T", bound=UserCode)


class StepLoadError(Exception):
    """A step file that cannot be imported; the message names the file and the reason."""


def discover(
    directory: str | Path, base: type[T], is_concrete: Callable[[type[T]], bool]
) -> list[type[T]]:
    """The concrete subclasses of `base` in `directory`, in file-name then definition order."""
    found: dict[tuple[str, str], type[T]] = {}
    for module in load_modules(directory):
        for value in vars(module).values():
            if not (isinstance(value, type) and issubclass(value, base) and value is not base):
                continue
            # A file imported by another one by its plain name (`from sync_a import *`) is a
            # second module object of the same file: its classes are the same steps.
            key = (defined_in(value), value.__qualname__)
            if key not in found and is_concrete(value):
                found[key] = value
    return list(found.values())


def load_sync_steps(directory: str | Path) -> list[type[SyncStep]]:
    """The sync steps of `directory`: those that name what they observe in `observes`."""
    return discover(directory, SyncStep, lambda step: bool(step.observes))


def load_policies(directory: str | Path) -> list[type[Policy]]:
    """The model policies of `directory`: those that name their model in `model_name`."""
    return discover(directory, Policy, lambda policy: bool(policy.model_name))


def load_pull_steps(directory: str | Path) -> list[type[PullStep]]:
    """The pull steps of `directory`: those with a `pull_records` of their own below the base."""
    return discover(
        directory, PullStep, lambda step: step.pull_records is not PullStep.pull_records
    )


def load_event_steps(directory: str | Path) -> list[type[EventStep]]:
    """The event steps of `directory`: those that list the `topics` they listen to."""
    return discover(directory, EventStep, _listens)


def _listens(step: type[EventStep]) -> bool:
    if isinstance(step.topics, (str, bytes)):
        raise StepLoadError(
            f"{defined_in(step)}: {step.__name__}.topics must be a list of topic names, "
            "not a string"
        )
    return bool(step.topics)


def defined_in(cls: type) -> str:
    """The file that defines `cls`, for messages that must name it."""
    module = sys.modules.get(cls.__module__)
    return str(getattr(module, "__file__", None) or cls.__module__)


def load_modules(
    directory: str | Path, *, accept: Callable[[Path], bool] | None = None
) -> list[ModuleType]:
    """Import each `.py` file of `directory` (not `__init__.py`, `_*.py` or `test*.py`)."""
    folder = Path(directory).resolve()
    if not folder.exists():
        raise StepLoadError(f"{folder}: the directory does not exist")
    if not folder.is_dir():
        raise StepLoadError(f"{folder}: not a directory")
    package = "xsync_user_" + hashlib.sha1(str(folder).encode()).hexdigest()[:12]
    modules: list[ModuleType] = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith(("_", "test")):
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
