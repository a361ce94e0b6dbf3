"""What each `xsync` command does, given its parsed arguments (`cli` only parses them).

Every command starts through `bootstrap` (config -> schema -> store) and fails with its one
`StartupError`; `xsync run` starts and stops a synchronizer's parts under a `Manager`.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Literal

from .bootstrap import EXIT_ABANDONED, EXIT_OK, StartupError, load
from .manager import Hooks, Manager, Part

if TYPE_CHECKING:
    from .config import Config
    from .core_wait import CoreWait
    from .observability import Metrics

RunMode = Literal["once", "until-idle", "forever"]


def run_synchronizer(
    config_path: str,
    *,
    mode: RunMode,
    timeout: float | None = None,
    log_level: str | None = None,
    metrics_port: int | None = None,
    migrated: bool = False,
) -> int:
    """`xsync run`: start every part, run the passes of `mode`, stop every part."""
    from .backend_state import count_states
    from .backoff import wall_clock
    from .connect import plaintext_warning
    from .core_wait import StopRequested
    from .observability import Metrics
    from .runner import Runner, build_event_engine
    from .stopping import GracefulStop
    from .store.base import STORE_DOWN

    metrics = Metrics()
    config = load(config_path)
    parts = Manager(logging.getLogger(__name__))
    # The lock is held first and released last: no second runner starts on this store meanwhile.
    parts.add("runner lock", _single_runner_lock(config))
    stopper: GracefulStop | None = None
    try:
        with parts:
            log = _setup_logging(config, log_level)
            try:
                runtime = _build(
                    config,
                    metrics=metrics,
                    log=log,
                    migrated=migrated,
                    core_wait=_core_wait(config, mode, log),
                )
            except StopRequested as stopped:
                log.info(str(stopped))
                return EXIT_OK  # nothing had started: a clean stop
            parts.add("runtime", Hooks(on_stop=runtime.close))
            parts.start()  # from here on, whatever fails closes the runtime
            metrics.count_objects_with(
                lambda: count_states(runtime.store, runtime.observed_models, wall_clock())
            )
            log.info(runtime.summary(), extra={"config": str(config.path)})
            warning = plaintext_warning(config)
            if warning is not None:
                log.warning(warning)
            if metrics_port is not None:
                parts.add("metrics server", _MetricsServerPart(metrics, metrics_port))
            runner = Runner(
                runtime.engine,
                runtime.store,
                interval=config.loop_interval_seconds,
                log=log,
                policies=runtime.policy_engine,
                pulls=runtime.pull_scheduler,
                reaper=runtime.reaper,
                events=build_event_engine(runtime, log, metrics),
                events_timeout=timeout or 30.0,
                leadership=runtime.leadership,
                retention=runtime.retention,
            )
            if runner.events is not None:
                # Started by the passes or by run_forever; stopped here in every mode. Finished
                # events are committed; one whose step is still running is not.
                parts.add("event engine", Hooks(on_stop=runner.events.stop))
            # Lease renewal and leadership stop with the runtime.
            parts.add("work sharing", Hooks(on_start=runtime.start_sharing))
            parts.start()
            # Signals are handled until every part has stopped (the grace period covers them).
            stopper = GracefulStop(
                runner.request_stop,
                grace=config.stop_grace_seconds,
                exit_code=EXIT_ABANDONED,
                log=log,
            )
            stopper.install()
            if not (runtime.steps or runtime.policies or runtime.pull_steps or runtime.event_steps):
                log.warning(
                    "no sync steps found; nothing to do",
                    extra={"steps_dir": str(config.steps_dir)},
                )
            try:
                return _run_passes(runner, mode, timeout)
            except STORE_DOWN as exc:
                # --once and --until-idle end on a lost store; every mode ends on refused
                # credentials.
                raise StartupError(str(exc)) from None
    finally:
        if stopper is not None:
            stopper.finished()


def _run_passes(runner: Any, mode: RunMode, timeout: float | None) -> int:
    if mode == "once":
        runner.run_once()
    elif mode == "until-idle":
        idle = runner.run_until_idle(timeout=timeout)
        if not idle and not runner.stop.is_set():
            raise StartupError(f"still busy after {timeout} s (--timeout)")
    else:
        runner.run_forever(timeout=timeout)
    return EXIT_OK


class _MetricsServerPart:
    def __init__(self, metrics: Metrics, port: int) -> None:
        self._metrics = metrics
        self._port = port
        self._server: Any = None

    def start(self) -> None:
        from .observability import MetricsServer

        self._server = MetricsServer(self._metrics, port=self._port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()


def _core_wait(config: Config, mode: RunMode, log: logging.Logger) -> CoreWait | None:
    """How `xsync run` waits for a core that is down at start: a long-running run until it
    answers, and any run for `accessor.wait_seconds` when set. --once and --until-idle do not
    wait by default: a CI job wants the failure."""
    from .core_wait import CoreWait

    accessor = config.accessor
    if accessor is None or (mode != "forever" and accessor.wait_seconds is None):
        return None
    return CoreWait(accessor.endpoint, log=log, limit=accessor.wait_seconds)


def _single_runner_lock(config: Config) -> Part:
    """The SQLite store's runner lock (nothing for a core or PostgreSQL): one runner per file."""
    from .runner_lock import SecondRunner, hold_single_runner

    if config.accessor is not None:
        return Hooks()
    try:
        single = hold_single_runner(config.store)
    except SecondRunner as exc:
        raise StartupError(str(exc)) from None
    return Hooks(on_stop=single.release) if single is not None else Hooks()


def _build(config: Config, **kwargs: Any) -> Any:
    """The runtime built from `config`, with every start-up problem as a `StartupError`."""
    from .core_wait import StopRequested
    from .runner import build_runtime

    try:
        return build_runtime(config, **kwargs)
    except (StartupError, StopRequested):
        raise
    except Exception as exc:
        # Anything else at start-up is still the user's setup, not a crash to dump on them.
        raise StartupError(f"{config.path}: cannot start: {type(exc).__name__}: {exc}") from None


def _setup_logging(config: Config, level: str | None) -> logging.Logger:
    from .observability import setup_logging

    options = config.logging
    try:
        return setup_logging(
            {
                "level": level or options.level,
                "format": options.format,
                "destination": options.destination,
            }
        )
    except OSError as exc:
        raise StartupError(
            f"{config.path}: logging.destination: cannot write {options.destination}: "
            f"{exc.strerror or exc}"
        ) from None


def show_status(
    config_path: str, model: str | None = None, id: int | None = None, *, as_json: bool = False
) -> int:
    """`xsync status`: every synchronized model's counts, or (MODEL ID) one object's story."""
    from .backoff import wall_clock
    from .planner import LinkFields
    from .runner import dead_letter_topic
    from .status import (
        collect_event_status,
        collect_policy_status,
        collect_runner_status,
        collect_status,
    )

    if model is not None and id is None:
        raise StartupError("status: MODEL needs an ID (xsync status CONFIG MODEL ID)")
    runtime = _build(load(config_path))
    if model is not None and id is not None:
        try:
            return _story(runtime, model, id, as_json=as_json)
        finally:
            runtime.close()
    try:
        now = wall_clock()
        report = collect_status(
            runtime.store,
            runtime.observed_models,
            LinkFields.from_model_deps(runtime.model_deps),
            now=now,
        )
        if runtime.claims is not None:
            report.runners = collect_runner_status(runtime.claims.leases, runtime.config.name)
        if runtime.policies:
            report.policies = collect_policy_status(
                runtime.store, list(dict.fromkeys(p.model_name for p in runtime.policies)), now=now
            )
        if runtime.event_steps and runtime.config.event_bus is not None:
            report.events = collect_event_status(
                runtime.config.event_bus.endpoint,
                runtime.config.name,
                sorted({t for step in runtime.event_steps for t in step.topics}),
                dead_letter_topic=dead_letter_topic(runtime.config),
            )
    finally:
        runtime.close()
    if as_json:
        print(json.dumps(report.as_json()))
    else:
        print(report.as_text(now))
    return EXIT_OK


def _story(runtime: Any, model: str, id: int, *, as_json: bool) -> int:
    from .backoff import wall_clock
    from .status import story_text
    from .store.base import NotFound
    from .ui.state import StatusReader

    _check_model(runtime, model)
    now = wall_clock()
    models = list(dict.fromkeys([*runtime.observed_models, model]))
    try:
        detail = StatusReader(runtime.store, models, runtime.model_deps).detail(model, id, now=now)
    except NotFound:
        raise StartupError(f"no {model} with id {id}") from None
    print(json.dumps({**detail, "now": now}) if as_json else story_text(detail, now))
    return EXIT_OK


def retry_objects(
    config_path: str, model: str | None, ids: list[int], *, failed_only: bool = False
) -> int:
    """`xsync retry`: make the selected objects due now (clears their backoff)."""
    from .backoff import wall_clock
    from .retry import missing, retry_now, select

    runtime = _build(load(config_path))
    try:
        if model is not None:
            _check_model(runtime, model)
            absent = missing(runtime.store, model, ids)
            if absent:
                raise StartupError(f"no {model} with id {', '.join(map(str, absent))}")
        models = [model] if model is not None else runtime.observed_models
        keys = select(runtime.store, models, ids, failed_only=failed_only, now=wall_clock())
        for name, id in keys:
            retry_now(runtime.store, name, id)
    finally:
        runtime.close()
    shown = ", ".join(f"{m} {i}" for m, i in keys[:10]) + (", ..." if len(keys) > 10 else "")
    noun = "object" if len(keys) == 1 else "objects"
    print(f"{len(keys)} {noun} due now" + (f": {shown}" if keys else ""))
    return EXIT_OK


def _check_model(runtime: Any, model: str) -> None:
    if model not in runtime.accessor.models:
        known = ", ".join(sorted(runtime.observed_models))
        raise StartupError(f"no model named {model!r}; the synchronized models are: {known}")
