"""`xsync`: argument parsing and exit codes only; the runtime does the work.

    xsync run CONFIG [--once | --until-idle] [--timeout S] [--log-level L] [--metrics-port P]
    xsync status CONFIG [MODEL ID] [--json]
    xsync retry CONFIG [MODEL [ID...]] [--failed]
    xsync core ...      (the gRPC core server: xsync.grpc.serve_cli.run_core)
    xsync hash-password (a password hash for the core's accounts: xsync.hash_password_cli)

A user never sees a traceback: every expected problem is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any, Callable, Sequence

from xprotogen.cliargs import ArgumentParser as _ArgumentParser
from xprotogen.cliargs import UsageError as _UsageError
from xprotogen.cliargs import report_internal_error, silence_broken_pipe

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Stopped by a signal with steps still running after the grace period: their work is abandoned.
EXIT_ABANDONED = 3

# Sub-commands other modules provide: name -> (module, function taking the remaining args, help).
_DELEGATED = {
    "core": ("xsync.grpc.serve_cli", "run_core", "serve the models over gRPC (the core)"),
    "ui": ("xsync.ui", "run_ui", "browse the models in a web page"),
    "hash-password": (
        "xsync.hash_password_cli",
        "run_hash_password",
        "print the password hash of a core account",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="xsync", description="The synchronizer runtime.")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_ArgumentParser
    )
    commands.required = True

    run = commands.add_parser("run", help="run the synchronizer")
    run.add_argument("config", metavar="CONFIG", help="the synchronizer's YAML config")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run one pass, then exit")
    mode.add_argument(
        "--until-idle", action="store_true", help="run passes until only backing-off work is left"
    )
    run.add_argument(
        "--timeout", type=_seconds, metavar="S", help="give up after S seconds (exit 1 if not idle)"
    )
    run.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING or ERROR (default: the config's logging.level)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="P",
        help="serve Prometheus metrics on 127.0.0.1:P/metrics",
    )
    run.add_argument(
        "--migrated",
        action="store_true",
        help="accept models that break the store's data: you migrated it for them",
    )
    run.set_defaults(handler=_run)

    status = commands.add_parser(
        "status", help="show what is synced, pending, failing and held back"
    )
    status.add_argument("config", metavar="CONFIG")
    status.add_argument("model", metavar="MODEL", nargs="?", help="with ID: one object's story")
    status.add_argument("id", metavar="ID", nargs="?", type=int, help="the object's id")
    status.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    status.set_defaults(handler=_status)

    retry = commands.add_parser(
        "retry", help="make objects due now (clears their backoff), after a fix"
    )
    retry.add_argument("config", metavar="CONFIG")
    retry.add_argument("model", metavar="MODEL", nargs="?", help="only this model's objects")
    retry.add_argument("ids", metavar="ID", nargs="*", type=int, help="only these objects")
    retry.add_argument(
        "--failed", action="store_true", help="only objects whose last attempt failed"
    )
    retry.set_defaults(handler=_retry)

    for name, (_, _, help_text) in _DELEGATED.items():
        sub = commands.add_parser(name, help=help_text, add_help=False)
        sub.add_argument("rest", nargs=argparse.REMAINDER)
        sub.set_defaults(handler=_delegate(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        # Hand everything after the command over untouched, `--help` included.
        argv = [argv[0], "--", *argv[1:]]
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return EXIT_FAILED
    except BrokenPipeError:
        silence_broken_pipe()
        return EXIT_FAILED
    except _Failure as exc:
        print(f"xsync: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the user gets one line, never a traceback
        return report_internal_error("xsync", exc)


class _Failure(Exception):
    """An expected problem, already worded for the user."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _load(config_path: str) -> Any:
    from .config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise _Failure(str(exc)) from None


def _build(config: Any, **kwargs: Any) -> Any:
    """The runtime built from `config`, with every start-up problem as a `_Failure`."""
    from .runner import StartupError, build_runtime

    try:
        return build_runtime(config, **kwargs)
    except StartupError as exc:
        raise _Failure(str(exc)) from None
    except Exception as exc:
        # Anything else at start-up is still the user's setup, not a crash to dump on them.
        raise _Failure(f"{config.path}: cannot start: {type(exc).__name__}: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from .observability import Metrics, MetricsServer
    from .runner import Runner, build_event_engine
    from .connect import plaintext_warning
    from .store.base import STORE_DOWN
    from .stopping import GracefulStop

    metrics = Metrics()
    config = _load(args.config)
    single = _single_runner_lock(config)
    try:
        log = _setup_logging(config, args.log_level)
        runtime = _build(config, metrics=metrics, log=log, migrated=args.migrated)
    except BaseException:
        if single is not None:
            single.release()
        raise
    log.info(runtime.summary(), extra={"config": str(config.path)})
    warning = plaintext_warning(config)
    if warning is not None:
        log.warning(warning)
    server = (
        MetricsServer(metrics, port=args.metrics_port) if args.metrics_port is not None else None
    )
    runner = Runner(
        runtime.engine,
        runtime.store,
        interval=config.loop_interval_seconds,
        log=log,
        policies=runtime.policy_engine,
        pulls=runtime.pull_scheduler,
        reaper=runtime.reaper,
        events=build_event_engine(runtime, log, metrics),
        events_timeout=args.timeout or 30.0,
        leadership=runtime.leadership,
    )
    runtime.start_sharing()
    stopper = GracefulStop(
        runner.request_stop,
        grace=config.stop_grace_seconds,
        exit_code=EXIT_ABANDONED,
        log=log,
    )
    stopper.install()
    events = runner.events
    try:
        if not (runtime.steps or runtime.policies or runtime.pull_steps or runtime.event_steps):
            log.warning(
                "no sync steps found; nothing to do", extra={"steps_dir": str(config.steps_dir)}
            )
        if args.once:
            runner.run_once()
            return EXIT_OK
        if args.until_idle:
            idle = runner.run_until_idle(timeout=args.timeout)
            if not idle and not runner.stop.is_set():
                raise _Failure(f"still busy after {args.timeout} s (--timeout)")
            return EXIT_OK
        runner.run_forever(timeout=args.timeout)
        return EXIT_OK
    except STORE_DOWN as exc:
        # --once and --until-idle end on a lost store; every mode ends on refused credentials.
        raise _Failure(str(exc)) from None
    finally:
        if events is not None:
            # Finished events are committed; one whose step is still running is not.
            events.stop()
        if server is not None:
            server.close()
        runtime.close()
        if single is not None:
            single.release()
        stopper.finished()


def _single_runner_lock(config: Any) -> Any:
    """The SQLite store's runner lock (None for a core or PostgreSQL): one runner per file."""
    from .runner_lock import SecondRunner, hold_single_runner

    if config.accessor is not None:
        return None
    try:
        return hold_single_runner(config.store)
    except SecondRunner as exc:
        raise _Failure(str(exc)) from None


def _status(args: argparse.Namespace) -> int:
    from .backoff import wall_clock
    from .planner import LinkFields
    from .runner import dead_letter_topic
    from .status import (
        collect_event_status,
        collect_policy_status,
        collect_runner_status,
        collect_status,
    )

    if args.model is not None and args.id is None:
        raise _Failure("status: MODEL needs an ID (xsync status CONFIG MODEL ID)")
    runtime = _build(_load(args.config))
    if args.model is not None:
        try:
            return _story(runtime, args.model, args.id, as_json=args.json)
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
    if args.json:
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
        raise _Failure(f"no {model} with id {id}") from None
    print(json.dumps({**detail, "now": now}) if as_json else story_text(detail, now))
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    from .backoff import wall_clock
    from .retry import missing, retry_now, select

    runtime = _build(_load(args.config))
    try:
        if args.model is not None:
            _check_model(runtime, args.model)
            absent = missing(runtime.store, args.model, args.ids)
            if absent:
                raise _Failure(f"no {args.model} with id {', '.join(map(str, absent))}")
        models = [args.model] if args.model is not None else runtime.observed_models
        keys = select(runtime.store, models, args.ids, failed_only=args.failed, now=wall_clock())
        for model, id in keys:
            retry_now(runtime.store, model, id)
    finally:
        runtime.close()
    shown = ", ".join(f"{m} {i}" for m, i in keys[:10]) + (", ..." if len(keys) > 10 else "")
    noun = "object" if len(keys) == 1 else "objects"
    print(f"{len(keys)} {noun} due now" + (f": {shown}" if keys else ""))
    return EXIT_OK


def _check_model(runtime: Any, model: str) -> None:
    if model not in runtime.accessor.models:
        known = ", ".join(sorted(runtime.observed_models))
        raise _Failure(f"no model named {model!r}; the synchronized models are: {known}")


def _setup_logging(config: Any, level: str | None) -> Any:
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
        raise _Failure(
            f"{config.path}: logging.destination: cannot write {options.destination}: "
            f"{exc.strerror or exc}"
        ) from None


def _delegate(name: str) -> Callable[[argparse.Namespace], int]:
    module_name, function, _ = _DELEGATED[name]

    def run(args: argparse.Namespace) -> int:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise _Failure(f"'xsync {name}' is not available in this installation") from None
        entry = getattr(module, function, None)
        if entry is None:
            raise _Failure(f"'xsync {name}' is not available in this installation")
        rest = list(args.rest)
        result = entry(rest[1:] if rest[:1] == ["--"] else rest)
        return int(result or 0)

    return run


if __name__ == "__main__":
    sys.exit(main())
