"""Writing results: all or nothing, so a failure never leaves a half-written file."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def write_atomically(path: str | Path, data: str | bytes, *, mode: int | None = None) -> None:
    """Write `data` (text is UTF-8) to `path` through a temporary file in the same directory.

    `mode` sets the permission bits of the result; without it the file gets the mode any new
    file would (0644 under the usual umask), not the 0600 of the temporary file it starts as.
    """
    # Imported here: most runs print to stdout, and these cost a CLI run several milliseconds.
    import tempfile
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            os.fchmod(handle.fileno(), mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    # Reading the umask means setting it; set it straight back.
    current = os.umask(0o022)
    os.umask(current)
    return current


def emit(text: str, out: str | None) -> None:
    """Send a finished result to `out`, or to stdout when `out` is None or '-'."""
    if out is None or out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomically(out, text)
