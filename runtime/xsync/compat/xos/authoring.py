"""The XOS base classes (`xossynchronizer.steps.syncstep.SyncStep`, `Policy`, `EventStep`,
`PullStep`) as subclasses of xsync's, so xsync's loaders find and run them.

What they add is what XOS code expects of its bases: loggers that take keywords
(`self.log`, and `self.logger` on policies), `observes_classes`, `driver`, and the
exceptions XOS defines. Per-object instances and the constructor keywords are xsync's.
"""

from __future__ import annotations

import logging
from typing import Any

from ... import authoring as _bases
from .logs import KeywordLogger, keyword_logger

# XOS's DeferredException and InnocuousException are xsync's own.
DeferredException = _bases.DeferredException
InnocuousException = _bases.InnocuousException


class FailedDependency(Exception):
    """Defined by XOS for steps to raise; treated like any other failure."""


class ExternalDependencyFailed(Exception):
    """Defined by XOS: an object another synchronizer owns is not ready."""


class SynchronizerException(Exception):
    pass


class SynchronizerProgrammingError(SynchronizerException):
    pass


class SynchronizerConfigurationError(SynchronizerException):
    pass


class KeywordLog:
    """The `log` attribute of the XOS bases: whatever logger the engine sets (a stdlib one) is
    kept as a logger that also takes structlog keywords, as XOS code calls it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __get__(self, obj: object, owner: type) -> Any:
        if obj is None:
            return self
        found = obj.__dict__.get("_keyword_log")
        if found is None:
            found = keyword_logger(None, f"{self.kind}.{type(obj).__name__}")
            obj.__dict__["_keyword_log"] = found
        return found

    def __set__(self, obj: object, value: logging.Logger | KeywordLogger | None) -> None:
        obj.__dict__["_keyword_log"] = keyword_logger(value, f"{self.kind}.{type(obj).__name__}")


class _NoOpDriver:
    """XOS's default step driver: enabled, does nothing."""

    enabled = True
    dependency_graph = None


DRIVER = _NoOpDriver()


class SyncStep(_bases.SyncStep):
    """XOS's `SyncStep`: `observes`, `sync_record`, `delete_record`, `fetch_pending`."""

    provides: list[Any] = []
    external_dependencies: list[Any] = []
    slow = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.driver = kwargs.pop("driver", DRIVER)
        self.error_map = kwargs.pop("error_map", None)
        super().__init__(**kwargs)

    log = KeywordLog("step")

    @_bases.default_fetch
    def fetch_pending(  # type: ignore[override]  # XOS's keyword, and xsync's
        self, deletion: bool = False, **kwargs: Any
    ) -> list[Any]:
        """XOS calls the flag `deletion` (xsync's base, `deleted`): either keyword works."""
        return super().fetch_pending(bool(kwargs.pop("deleted", deletion)))

    @property
    def observes_classes(self) -> list[Any]:
        """`observes` as model classes (names resolved through the model accessor)."""
        items = self.observes if isinstance(self.observes, (list, tuple)) else [self.observes]
        accessor = self.model_accessor
        return [
            accessor.get_model_class(item) if isinstance(item, str) and accessor else item
            for item in items
            if item
        ]


class Policy(_bases.Policy):
    """XOS's `Policy`: `model_name` and `handle_create/update/delete`; `self.logger` logs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    log = KeywordLog("policy")

    @property
    def logger(self) -> KeywordLogger:
        """XOS policies log through `self.logger`; the same logger as `self.log`."""
        found: KeywordLogger = self.log
        return found


class EventStep(_bases.EventStep):
    """XOS's `EventStep`: `technology`, `topics`, `process_event(event)`."""

    pattern: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            # XOS's signature is EventStep(model_accessor, log, **kwargs).
            kwargs.setdefault("model_accessor", args[0])
            if len(args) > 1:
                kwargs.setdefault("log", args[1])
        super().__init__(**kwargs)

    log = KeywordLog("events")


class PullStep(_bases.PullStep):
    """XOS's `PullStep`: `pull_records()`, with `observed_model` from the constructor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.observed_model = kwargs.pop("observed_model", None)
        super().__init__(**kwargs)

    log = KeywordLog("pullstep")
