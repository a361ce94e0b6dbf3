"""Start-up, the same for every command: config -> schema -> store.

`xsync run`, `status`, `retry`, `core` and `ui` all start here, so a bad config, a broken
model file or an unreachable store reads the same whichever command met it: one
`StartupError` whose message is one line naming the problem and where, and one table of
exit codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from xprotogen.cliargs import EXIT_INTERNAL
from xprotogen.diagnostics import XprotoError, format_plain

from .store.base import Actor, StoreError, Unauthenticated, Unavailable

if TYPE_CHECKING:
    from xprotogen.schema import Schema

    from .config import Config

    from .connect import ModelAccessor
    from .core_wait import CoreWait
    from .planner import ModelDeps
    from .store.base import Store

# The exit codes of every xsync command.
EXIT_OK = 0
EXIT_FAILED = 1  # a problem worded for the user (a bad config, an unreachable store, ...)
EXIT_USAGE = 2  # a wrong command line
EXIT_ABANDONED = 3  # stopped by a signal with steps still running after the grace period
__all__ = [
    "EXIT_ABANDONED",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_USAGE",
    "StartupError",
    "load",
    "load_deps",
    "open_models",
    "open_served_store",
    "store_problem",
    "xproto_problem",
]


class StartupError(Exception):
    """The command cannot start; the message is one line naming the problem and where."""


def load(config_path: str) -> Config:
    """The config at `config_path`, or StartupError saying what is wrong with it."""
    from .config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None


def xproto_problem(exc: XprotoError) -> str:
    """The first problem of model files that cannot be read, in the line `xsgen lint` prints."""
    return format_plain(exc.diagnostics[0]) if exc.diagnostics else str(exc)


def store_problem(config: Config, exc: StoreError) -> str:
    # The core's errors already name the endpoint and say what to check; an embedded store's
    # (a database that went away is `Unavailable` too) are named after the config.
    if isinstance(exc, (Unavailable, Unauthenticated)) and config.accessor is not None:
        return str(exc)
    return f"{config.path}: store: {exc}"


def open_models(
    config: Config,
    *,
    actor: Actor = "synchronizer",
    migrated: bool = False,
    core_wait: CoreWait | None = None,
) -> ModelAccessor:
    """The config's models bound to its store (embedded or a remote core), which has answered.

    Models that break the store's data are refused unless `migrated` (see `open_store`).
    With `core_wait`, a remote core that is down is waited for (`StopRequested` when a signal
    ends the wait). Close the accessor when done.
    """
    from .connect import connect

    try:
        accessor = connect(config, actor=actor, migrated=migrated)
    except XprotoError as exc:
        raise StartupError(xproto_problem(exc)) from None
    except (StoreError, OSError) as exc:
        raise StartupError(f"{config.path}: store: {exc}") from None
    try:
        # A remote core answers for the first time here: unreachable or refusing is one line.
        if core_wait is not None and config.accessor is not None:
            core_wait.until_answered(accessor.store)
        else:
            accessor.store.model_names()
    except StoreError as exc:
        accessor.close()
        raise StartupError(store_problem(config, exc)) from None
    except BaseException:
        accessor.close()
        raise
    return accessor


def load_deps(
    config: Config,
    schema: Schema,
    synced: set[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> ModelDeps:
    """The model dependencies the config names (or the schema's links), as `load_model_deps`."""
    from .model_deps import ModelDepsError, load_model_deps

    try:
        return load_model_deps(config, schema, synced, warn)
    except ModelDepsError as exc:
        raise StartupError(str(exc)) from None


def open_served_store(config: Config, url: str, *, migrated: bool = False) -> tuple[Schema, Store]:
    """The schema of the config's model files and the store at `url` holding it (`xsync core`)."""
    from xprotogen.loader import load_schema

    from .store import open_store
    from .store.version import served_version

    try:
        schema = load_schema(config.model_files, core="auto")
    except XprotoError as exc:
        raise StartupError(xproto_problem(exc)) from None
    try:
        store = open_store(
            url, schema, core_version=served_version(config.core_version), migrated=migrated
        )
    except StoreError as exc:
        raise StartupError(str(exc)) from None
    return schema, store
