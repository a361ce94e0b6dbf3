"""argparse that reports usage errors by exception, so each CLI chooses its own exit path.

Shared by `xsgen` and the `xsync` commands: a usage error is one message and exit 2, never
argparse's direct `sys.exit` from deep inside parsing.
"""

from __future__ import annotations

import argparse


class UsageError(Exception):
    """The command line is wrong; the message holds the error and the usage line."""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message}\n{self.format_usage().strip()}")


EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug of ours, not a problem with the user's input
TRACEBACK_ENV = "XPROTOGEN_TRACEBACK"


def report_internal_error(prog: str, exc: BaseException) -> int:
    """The last resort of a CLI: one line instead of a traceback, unless asked for one."""
    import os
    import sys
    import traceback

    if os.environ.get(TRACEBACK_ENV):
        traceback.print_exception(exc, file=sys.stderr)
    print(
        f"{prog}: internal error: {type(exc).__name__}: {exc} "
        f"(this is a bug; set {TRACEBACK_ENV}=1 to see where it happened)",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def silence_broken_pipe() -> None:
    """After the reader of stdout went away (`xsync status | head`): end without a word.

    stdout is pointed at /dev/null, so that the interpreter's last flush at exit does not
    fail again and print its own warning.
    """
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # no real stdout to redirect: nothing will be flushed to it either
