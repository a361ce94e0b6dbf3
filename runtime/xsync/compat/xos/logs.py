"""Loggers that take structlog-style keywords, as XOS's `multistructlog` loggers do.

CORD code logs as `log.info("msg", o=obj, count=3)` on `self.log`, `self.logger` and module
loggers. The keywords become the record's context (`extra=`), which xsync's text and JSON
formatters print; a keyword that clashes with a `LogRecord` attribute gets a trailing `_`.
"""

from __future__ import annotations

import logging
from typing import Any

from ...observability import LOGGER_NAME

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class KeywordLogger:
    """A stdlib logger with bound context that accepts keyword arguments on every call."""

    def __init__(self, logger: logging.Logger, context: dict[str, Any] | None = None) -> None:
        self._logger = logger
        self._context = dict(context or {})

    @property
    def name(self) -> str:
        return self._logger.name

    def new(self, **context: Any) -> KeywordLogger:
        """A logger with only `context` bound (structlog's `new`)."""
        return KeywordLogger(self._logger, context)

    def bind(self, **context: Any) -> KeywordLogger:
        """A logger with `context` added to what is bound already."""
        return KeywordLogger(self._logger, {**self._context, **context})

    def unbind(self, *keys: str) -> KeywordLogger:
        return KeywordLogger(
            self._logger, {k: v for k, v in self._context.items() if k not in keys}
        )

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - the stdlib's name
        return self._logger.isEnabledFor(level)

    def log(self, level: int, event: object = "", *args: Any, **kw: Any) -> None:
        if self._logger.isEnabledFor(level):
            self._emit(level, event, args, kw)

    # Each level checks before doing anything else: most debug lines are below the level.

    def debug(self, event: object = "", *args: Any, **kw: Any) -> None:
        if self._logger.isEnabledFor(logging.DEBUG):
            self._emit(logging.DEBUG, event, args, kw)

    def info(self, event: object = "", *args: Any, **kw: Any) -> None:
        if self._logger.isEnabledFor(logging.INFO):
            self._emit(logging.INFO, event, args, kw)

    msg = info

    def warning(self, event: object = "", *args: Any, **kw: Any) -> None:
        if self._logger.isEnabledFor(logging.WARNING):
            self._emit(logging.WARNING, event, args, kw)

    warn = warning

    def error(self, event: object = "", *args: Any, **kw: Any) -> None:
        if self._logger.isEnabledFor(logging.ERROR):
            self._emit(logging.ERROR, event, args, kw)

    def critical(self, event: object = "", *args: Any, **kw: Any) -> None:
        if self._logger.isEnabledFor(logging.CRITICAL):
            self._emit(logging.CRITICAL, event, args, kw)

    fatal = critical

    def exception(self, event: object = "", *args: Any, **kw: Any) -> None:
        if self._logger.isEnabledFor(logging.ERROR):
            kw.setdefault("exc_info", True)
            self._emit(logging.ERROR, event, args, kw)

    def _emit(self, level: int, event: object, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        exc_info = kw.pop("exc_info", None)
        stack_info = bool(kw.pop("stack_info", False))
        extra = kw.pop("extra", None)
        context = {**self._context, **(extra if isinstance(extra, dict) else {}), **kw}
        self._logger.log(
            level,
            event,
            *args,
            exc_info=exc_info,
            stack_info=stack_info,
            stacklevel=3,  # the caller of debug()/info()/...: the synchronizer's line
            extra={_safe_key(key): value for key, value in context.items()},
        )

    def __repr__(self) -> str:
        return f"<KeywordLogger {self._logger.name} {self._context}>"


def keyword_logger(logger: logging.Logger | KeywordLogger | None, name: str) -> KeywordLogger:
    """`logger` made keyword-friendly; a fresh child of xsync's logger when there is none."""
    if isinstance(logger, KeywordLogger):
        return logger
    if logger is None:
        logger = logging.getLogger(f"{LOGGER_NAME}.{name}")
    return KeywordLogger(logger)


def create_logger(config: object = None, level: object = None) -> KeywordLogger:
    """`multistructlog.create_logger`: a keyword logger under xsync's logging.

    XOS passes its `logging` config (a `logging.config` dict); xsync's own `logging`
    section decides where lines go and at which level, so the dict is not applied.
    """
    return KeywordLogger(logging.getLogger(f"{LOGGER_NAME}.synchronizer"))


def _safe_key(key: str) -> str:
    return f"{key}_" if key in _RESERVED else key
