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
