"""Where a failure in user code happened: the frames of its traceback in the user's files.

A step that fails on a programming error (`obj.imag`) and one whose backend said no both end in
a one-line `backend_status`; the traceback is what tells them apart. It is kept beside the
object (`backend_state`) and shown by `xsync status` and the UI, trimmed to the frames that are
neither xsync's nor the standard library's, so it points at the user's file and line.
"""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path

from .bounded import StepAborted, StepTimeout

_OURS = str(Path(__file__).resolve().parent)
_STDLIB = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
)
MAX_TRACEBACK = 4000  # characters kept: the innermost frames and the exception line
MAX_EXCEPTION_LINE = 300  # the message is in backend_status already; here it only names it


def user_traceback(exc: BaseException) -> str | None:
    """`exc`'s traceback cut to the user's frames, or None when it has none worth showing
    (a time limit, or an exception raised with no user frame on the way)."""
    if isinstance(exc, StepTimeout):
        return None
    if isinstance(exc, StepAborted):
        exc = exc.raised
    frames = [
        frame for frame in traceback.extract_tb(exc.__traceback__) if _is_users(frame.filename)
    ]
    if not frames:
        return None
    text = "".join(
        [
            "Traceback (user code, most recent call last):\n",
            *traceback.format_list(frames),
            *(_cut(line) for line in traceback.format_exception_only(type(exc), exc)),
        ]
    ).rstrip("\n")
    return text if len(text) <= MAX_TRACEBACK else "..." + text[-MAX_TRACEBACK:]


def _cut(line: str) -> str:
    body = line.rstrip("\n")
    return (body[:MAX_EXCEPTION_LINE] + "...\n") if len(body) > MAX_EXCEPTION_LINE else line


def _is_users(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    path = str(Path(filename).resolve())
    if path.startswith(_OURS):
        return False
    return not path.startswith(_STDLIB) or "site-packages" in path
