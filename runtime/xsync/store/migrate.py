"""Schema evolution: bring an existing database up to the tables of a newer schema.

Only additions are made (new tables, new columns filled with their defaults); nothing is
dropped or retyped, so every existing row survives and an older schema can still read it.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from .tables import CHANGE_TABLE, ModelTable


def evolve(conn: sa.Connection, metadata: sa.MetaData, tables: dict[str, ModelTable]) -> list[str]:
    """Create missing tables and add missing columns; returns what was done, for logging."""
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    done: list[str] = []
    metadata.create_all(conn, checkfirst=True)
    for mt in tables.values():
        if mt.table is None or mt.table.name not in existing:
            continue
        present = {c["name"] for c in inspector.get_columns(mt.table.name)}
        for column in mt.table.columns:
            if column.name not in present:
                _add_column(conn, mt, column)
                done.append(f"{mt.table.name}.{column.name}")
    # The store's own tables grow too: the change log's `at` came after the log itself.
    changes = metadata.tables[CHANGE_TABLE]
    if changes.name in existing:
        present = {c["name"] for c in inspector.get_columns(changes.name)}
        for column in changes.columns:
            if column.name not in present:
                _add_nullable_column(conn, changes, column)
                done.append(f"{changes.name}.{column.name}")
    return done


def _add_nullable_column(conn: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> None:
    """Add `column` with NULL in every existing row (what the store's own columns expect)."""
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    kind = column.type.compile(dialect=dialect)
    conn.execute(sa.text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"))


def _add_column(conn: sa.Connection, mt: ModelTable, column: sa.Column[object]) -> None:
    assert mt.table is not None
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    ddl = f"ALTER TABLE {quote(mt.table.name)} ADD COLUMN {quote(column.name)} {column.type.compile(dialect=dialect)}"
    conn.execute(sa.text(ddl))
    spec = mt.columns.get(column.name)
    initial = None if spec is None else spec.initial(time.time())
    if column.name == "leaf_model_name":
        initial = mt.name
    if initial is not None:
        conn.execute(sa.update(mt.table).values({column.name: initial}))
