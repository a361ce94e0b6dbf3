"""The store's clock in SQL: seconds since the epoch, as the database sees them.

Times that several runners compare (lease ends, change-log ages) come from this one clock,
never from a runner's, so runners on machines whose clocks disagree still agree.
"""

from __future__ import annotations

_NOW_SQL = {
    "postgresql": "CAST(extract(epoch FROM clock_timestamp()) AS double precision)",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


def now_sql(dialect_name: str) -> str:
    """An SQL expression for the store's time now, in float seconds since the epoch."""
    return _NOW_SQL[dialect_name]
