"""The import hook: XOS's module names, served from xsync's compatibility code.

A `sys.meta_path` finder that knows a fixed table of names (`xossynchronizer.*`,
`xosconfig`, `multistructlog`, `xoskafka`, `xosapi.*`) and builds each module from xsync's
classes when the synchronizer's code imports it. It is installed only while a runtime that
loaded a synchronizer is open (see `session.XOSCompat`), and what it served is removed from
`sys.modules` when that runtime closes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

# The top-level names the hook serves; a real installed package of one of them is hidden
# from the synchronizer's code while the runtime is open, and left alone otherwise.
TOP_LEVEL = ("xossynchronizer", "xosconfig", "multistructlog", "xoskafka", "xosapi")


@dataclass(frozen=True, slots=True)
class ModuleEntry:
    """One served module: its attributes (computed when imported) and whether it is a package."""

    build: Callable[[], Mapping[str, Any]]
    package: bool = False


def _package() -> ModuleEntry:
    return ModuleEntry(lambda: {}, package=True)


def module_table(modelaccessor: Callable[[], Mapping[str, Any]]) -> dict[str, ModuleEntry]:
    """Every served module name; `modelaccessor` gives the live model classes and accessor."""

    def names(module: str, *attrs: str) -> Callable[[], Mapping[str, Any]]:
        def build() -> Mapping[str, Any]:
            source = importlib.import_module(f"xsync.compat.xos.{module}")
            return {attr: getattr(source, attr) for attr in attrs}

        return build

    return {
        "xossynchronizer": _package(),
        "xossynchronizer.steps": _package(),
        "xossynchronizer.steps.syncstep": ModuleEntry(
            names(
                "authoring",
                "SyncStep",
                "DeferredException",
                "InnocuousException",
                "FailedDependency",
                "ExternalDependencyFailed",
            )
        ),
        "xossynchronizer.steps.ansiblesyncstep": ModuleEntry(names("ansible", "AnsibleSyncStep")),
        "xossynchronizer.model_policies": _package(),
        "xossynchronizer.model_policies.policy": ModuleEntry(names("authoring", "Policy")),
        "xossynchronizer.model_policies.model_policy_tenantwithcontainer": ModuleEntry(
            names(
                "tenantwithcontainer",
                "Scheduler",
                "LeastLoadedNodeScheduler",
                "TenantWithContainerPolicy",
            )
        ),
        "xossynchronizer.event_steps": _package(),
        "xossynchronizer.event_steps.eventstep": ModuleEntry(names("authoring", "EventStep")),
        "xossynchronizer.pull_steps": _package(),
        "xossynchronizer.pull_steps.pullstep": ModuleEntry(names("authoring", "PullStep")),
        "xossynchronizer.modelaccessor": ModuleEntry(modelaccessor),
        "xossynchronizer.ansible_helper": ModuleEntry(
            names("ansible", "run_template", "run_template_ssh")
        ),
        "xossynchronizer.exceptions": ModuleEntry(
            names(
                "authoring",
                "SynchronizerException",
                "SynchronizerProgrammingError",
                "SynchronizerConfigurationError",
            )
        ),
        "xosconfig": ModuleEntry(names("settings", "Config")),
        "multistructlog": ModuleEntry(names("logs", "create_logger")),
        "xoskafka": ModuleEntry(names("kafka", "XOSKafkaProducer")),
        "xosapi": _package(),
        "xosapi.orm": ModuleEntry(
            names(
                "convenience",
                "ORMWrapper",
                "register_convenience_wrapper",
                "ORMGenericObjectNotFoundException",
            )
        ),
        "xosapi.convenience": _package(),
        "xosapi.convenience.service": ModuleEntry(names("convenience", "ORMWrapperService")),
        "xosapi.convenience.serviceinstance": ModuleEntry(
            names("convenience", "ORMWrapperServiceInstance")
        ),
    }


def served(name: str) -> bool:
    """Whether `name` is one of the hook's names or below one."""
    return any(name == top or name.startswith(top + ".") for top in TOP_LEVEL)


def installed_elsewhere(names: Sequence[str] = TOP_LEVEL) -> dict[str, str]:
    """The hook's top-level names that a real package on `sys.path` also provides: name -> where."""
    found: dict[str, str] = {}
    for name in names:
        spec = importlib.machinery.PathFinder.find_spec(name)
        if spec is not None:
            found[name] = str(spec.origin or (spec.submodule_search_locations or ["?"])[0])
    return found


class XOSModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and builds the modules of `table`; records which ones it built."""

    def __init__(self, table: Mapping[str, ModuleEntry]) -> None:
        self.table = dict(table)
        self.built: list[str] = []
        # Top-level names a real installed package also provides: name -> where it is.
        self.shadowed: dict[str, str] = {}
        self.log = logging.getLogger("xsync")

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        entry = self.table.get(fullname)
        if entry is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=entry.package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        entry = self.table[module.__name__]
        module.__dict__.update(entry.build())
        self.built.append(module.__name__)
        where = self.shadowed.get(module.__name__)
        if where is not None:
            self.log.warning(
                "%s is installed (%s); while this synchronizer runs, its code gets xsync's XOS "
                "compatibility module of that name instead. The installed package is untouched "
                "and importable again once the runtime closes.",
                module.__name__,
                where,
            )

    def install(self) -> None:
        if self not in sys.meta_path:
            # First: the synchronizer's code must get these, not a real package of the name.
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        while self in sys.meta_path:
            sys.meta_path.remove(self)
