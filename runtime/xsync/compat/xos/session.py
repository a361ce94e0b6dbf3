"""`XOSCompat`: what a runtime sets up so that an XOS synchronizer's code runs unchanged.

While a runtime is open: the import hook serves the XOS module names, the synchronizer's
folder is on `sys.path` (XOS's main script ran from it, so `from helpers import ...` works),
`xosconfig.Config` reads the folder's own `config.yaml`, the service's convenience wrappers
(`models/convenience/*.py`) and the core's are on the model classes. `close()` undoes all of
it: the served modules and the synchronizer's own top-level modules leave `sys.modules`, and
whatever those names held before comes back.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

from ...config import Config as XsyncConfig
from . import convenience, settings
from .kafka import XOSKafkaProducer
from .hook import TOP_LEVEL, XOSModuleFinder, installed_elsewhere, module_table, served


class ModelLink:
    """XOS's `ModelLink(dest, via, into=None)`: a step's declaration of a link it follows.
    Kept for code that imports it; the runtime reads links from the models themselves."""

    def __init__(self, dest: Any, via: str, into: str | None = None) -> None:
        self.dest = dest
        self.via = via
        self.into = into


class XOSCompatError(Exception):
    """The XOS side of the synchronizer cannot be set up; one line naming the file."""


_ACTIVE_LOCK = threading.Lock()
_ACTIVE: list[XOSCompat] = []


def synchronizer_folder(config: XsyncConfig) -> Path | None:
    """The folder that holds the synchronizer's code: the common parent of its step folders."""
    dirs = [
        d
        for d in (
            config.steps_dir,
            config.model_policies_dir,
            config.event_steps_dir,
            config.pull_steps_dir,
        )
        if d is not None
    ]
    if not dirs:
        return None
    if len(dirs) == 1:
        return dirs[0].parent
    return Path(os.path.commonpath([str(d) for d in dirs]))


class XOSCompat:
    """Set up with `open()`, undone with `close()`; one per runtime."""

    def __init__(
        self, config: XsyncConfig, accessor: Any, log: logging.Logger | None = None
    ) -> None:
        self.config = config
        self.accessor = accessor
        self.log = log or logging.getLogger("xsync")
        self.folder = synchronizer_folder(config)
        self.finder = XOSModuleFinder(module_table(self._modelaccessor))
        self._saved_modules: dict[str, ModuleType] = {}
        self._saved_settings: Any = None
        self._saved_wrappers: dict[str, type] = {}
        self._added_path: str | None = None
        self._open = False

    @property
    def xos_config_file(self) -> Path | None:
        """The synchronizer's XOS `config.yaml`, when there is one that is not xsync's own."""
        if self.folder is None:
            return None
        candidate = self.folder / "config.yaml"
        if candidate.is_file() and candidate.resolve() != self.config.path.resolve():
            return candidate
        return None

    def facts(self) -> dict[str, Any]:
        """The XOS config keys whose answer is xsync's config (what actually runs)."""
        c = self.config
        facts: dict[str, Any] = {"name": c.name, "models_dir": str(c.models_dir)}
        for key in (
            "steps_dir",
            "model_policies_dir",
            "event_steps_dir",
            "pull_steps_dir",
            "dependency_graph",
        ):
            value = getattr(c, key)
            if value is not None:
                facts[key] = str(value)
        if c.event_bus is not None:
            facts["event_bus"] = {"kind": c.event_bus.kind, "endpoint": c.event_bus.endpoint}
        if self.folder is not None:
            facts["sys_dir"] = str(self.folder / "sys")
        return facts

    # --- lifetime -----------------------------------------------------------------------------

    def open(self) -> None:
        """Serve the XOS names, put the folder on sys.path, load the convenience wrappers."""
        if self._open:
            return
        # Said when the synchronizer's code first imports such a name, not for every runtime.
        self.finder.shadowed = installed_elsewhere()
        self.finder.log = self.log
        self._saved_settings = settings.snapshot()
        self._saved_wrappers = convenience.registered_wrappers()
        try:
            settings.configure(self.xos_config_file, self.facts())
        except settings.XOSConfigError as exc:
            raise XOSCompatError(str(exc)) from None
        convenience.reset_wrappers(convenience.CORE_WRAPPERS)
        self._saved_modules = {n: m for n, m in sys.modules.items() if served(n)}
        for name in self._saved_modules:
            del sys.modules[name]
        self.finder.install()
        if self.folder is not None and str(self.folder) not in sys.path:
            sys.path.insert(0, str(self.folder))
            self._added_path = str(self.folder)
        with _ACTIVE_LOCK:
            _ACTIVE.append(self)
        self._open = True
        try:
            self._load_convenience()
            self.apply_wrappers()
        except BaseException:
            self.close()
            raise

    def apply_wrappers(self) -> None:
        """Put the registered wrappers on the model classes of every view of the accessor."""
        views = [self.accessor]
        as_actor = getattr(self.accessor, "as_actor", None)
        if as_actor is not None:
            views.append(as_actor("policy"))
        for view in views:
            convenience.apply_wrappers(view.models)

    def close(self) -> None:
        """Undo `open()`; safe to call twice."""
        if not self._open:
            return
        self._open = False
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        self.finder.uninstall()
        for name in [n for n in sys.modules if served(n) or self._is_synchronizer_module(n)]:
            del sys.modules[name]
        sys.modules.update(self._saved_modules)
        if self._added_path is not None and self._added_path in sys.path:
            sys.path.remove(self._added_path)
        settings.restore(self._saved_settings)
        convenience.reset_wrappers(self._saved_wrappers)
        # The producer is the synchronizer's: it goes with its runtime.
        XOSKafkaProducer.close()

    # --- helpers ------------------------------------------------------------------------------

    def _modelaccessor(self) -> Mapping[str, Any]:
        """`xossynchronizer.modelaccessor`: every model class, and `model_accessor`."""
        names: dict[str, Any] = {"ModelLink": ModelLink, **self.accessor.models}
        names["model_accessor"] = self.accessor
        return names

    def _is_synchronizer_module(self, name: str) -> bool:
        # Only for code that used the XOS names: its modules hold this runtime's classes, so
        # the next runtime must import them afresh (and `helpers` of another folder must not
        # be mistaken for this one's).
        if self.folder is None or not self.finder.built:
            return False
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if not path:
            return False
        try:
            return Path(path).resolve().is_relative_to(self.folder)
        except OSError:
            return False

    def _load_convenience(self) -> None:
        """Import the service's `models/convenience/*.py` (XOS's ORM wrappers for its models)."""
        folder = self.config.models_dir / "convenience"
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.py")):
            if path.name == "__init__.py" or "test" in path.name:
                continue
            name = f"xsync_xos_convenience_{abs(hash(str(path))):x}_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise XOSCompatError(f"{path}: cannot be loaded as a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[name]
                raise XOSCompatError(f"{path}: {type(exc).__name__}: {exc}") from None


def active() -> XOSCompat | None:
    """The most recently opened compatibility session, if any."""
    with _ACTIVE_LOCK:
        return _ACTIVE[-1] if _ACTIVE else None


__all__ = ["TOP_LEVEL", "XOSCompat", "XOSCompatError", "active", "synchronizer_folder"]
