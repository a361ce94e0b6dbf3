"""Which core version a store serves, and whether it satisfies a synchronizer's requirement.

A synchronizer's `core_version` is a requirement (">=4.0", "4.0 ~ 5.0", or a plain version);
a store serves one plain version. The embedded store and `xsync core` serve `CORE_VERSION`,
the XOS core API whose lifecycle rules and queries they implement, unless their config names
a plain version of its own.
"""

from __future__ import annotations

import re

CORE_VERSION = "4.0.0"

_PLAIN = re.compile(r"\d+(\.\d+)*")


class VersionSpecError(ValueError):
    """A requirement that cannot be read; the message quotes it."""


def is_plain_version(text: str) -> bool:
    return bool(_PLAIN.fullmatch(text.strip()))


def served_version(configured: str | None) -> str:
    """The version a store opened for this config serves."""
    return configured.strip() if configured and is_plain_version(configured) else CORE_VERSION


def version_matches(spec: str, version: str) -> bool:
    """A small semver-style check: "1.2", ">=1.2", ">=1.2,<2", "1.2 ~ 2.0" (inclusive)."""
    have = _version(version)
    if "~" in spec:
        low, high = (part.strip() for part in spec.split("~", 1))
        return _version(low) <= have <= _version(high)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = re.fullmatch(r"(>=|<=|==|!=|>|<|=)?\s*([\d.]+)", clause)
        if match is None:
            raise VersionSpecError(f"cannot read the requirement {spec!r}")
        op, want = match.group(1) or "==", _version(match.group(2))
        ok = {
            ">=": have >= want,
            "<=": have <= want,
            ">": have > want,
            "<": have < want,
            "==": have == want,
            "=": have == want,
            "!=": have != want,
        }[op]
        if not ok:
            return False
    return True


def _version(text: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in text.strip().split(".") if p.isdigit())
    # 4.0 and 4.0.0 are the same version.
    return parts + (0,) * (3 - len(parts)) if len(parts) < 3 else parts
