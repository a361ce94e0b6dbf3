"""`xsync`: argument parsing and exit codes only; the runtime does the work.

    xsync run CONFIG [--once | --until-idle] [--timeout S] [--log-level L] [--metrics-port P]
    xsync status CONFIG [MODEL ID] [--json]
    xsync retry CONFIG [MODEL [ID...]] [--failed]
    xsync core ...      (the gRPC core server: xsync.core_cli.run_core)
    xsync hash-password (a password hash for the core's accounts: xsync.hash_password_cli)

A user never sees a traceback: every expected problem is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Callable, Sequence

from xprotogen.cliargs import ArgumentParser as _ArgumentParser
from xprotogen.cliargs import UsageError as _UsageError
from xprotogen.cliargs import report_internal_error, silence_broken_pipe

from .bootstrap import EXIT_FAILED, EXIT_USAGE, StartupError

# Sub-commands other modules provide: name -> (module, function taking the remaining args, help).
_DELEGATED = {
    "core": ("xsync.core_cli", "run_core", "serve the models over gRPC (the core)"),
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
    except StartupError as exc:
        print(f"xsync: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the user gets one line, never a traceback
        return report_internal_error("xsync", exc)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    from .commands import RunMode, run_synchronizer

    mode: RunMode = "once" if args.once else "until-idle" if args.until_idle else "forever"
    return run_synchronizer(
        args.config,
        mode=mode,
        timeout=args.timeout,
        log_level=args.log_level,
        metrics_port=args.metrics_port,
        migrated=args.migrated,
    )


def _status(args: argparse.Namespace) -> int:
    from .commands import show_status

    return show_status(args.config, args.model, args.id, as_json=args.json)


def _retry(args: argparse.Namespace) -> int:
    from .commands import retry_objects

    return retry_objects(args.config, args.model, args.ids, failed_only=args.failed)


def _delegate(name: str) -> Callable[[argparse.Namespace], int]:
    module_name, function, _ = _DELEGATED[name]

    def run(args: argparse.Namespace) -> int:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise StartupError(f"'xsync {name}' is not available in this installation") from None
        entry = getattr(module, function, None)
        if entry is None:
            raise StartupError(f"'xsync {name}' is not available in this installation")
        rest = list(args.rest)
        result = entry(rest[1:] if rest[:1] == ["--"] else rest)
        return int(result or 0)

    return run


if __name__ == "__main__":
    sys.exit(main())
