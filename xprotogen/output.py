"""Writing results: all or nothing, so a failure never leaves a half-written file."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def write_atomically(path: str | Path, text: str, *, mode: int | None = None) -> None:
    """Write `text` to `path` through a temporary file in the same directory.

    `mode` sets the permission bits of the result (a rewritten file keeps the ones it had).
    """
    # Imported here: most runs print to stdout, and these cost a CLI run several milliseconds.
    import tempfile
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def emit(text: str, out: str | None) -> None:
    """Send a finished result to `out`, or to stdout when `out` is None or '-'."""
    if out is None or out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomically(out, text)
