"""Schema to SQL tables: one table per concrete model, association tables, the store's own tables.

Every model gets the XOS lifecycle columns, whether or not its xproto inherits XOSBase, so a
service file works alone. Ids come from one store-wide sequence (`xsync_object`), as Django's
multi-table inheritance gives a subclass row the id of its base row: a link to a base class
(`ServiceInstance`) can then point at a row of any subclass without ambiguity.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from xprotogen.options import NOW
from xprotogen.schema import Model, Schema
from xprotogen.store_columns import INT32, ColumnSpec, Kind, column_for_field

OBJECT_TABLE = "xsync_object"
CHANGE_TABLE = "xsync_changes"
META_TABLE = "xsync_meta"
MAX_NAME = 63  # PostgreSQL's identifier limit

_LIFECYCLE: tuple[ColumnSpec, ...] = (
    ColumnSpec("created", "date", NOW, required=True),
    ColumnSpec("updated", "date", NOW, required=True),
    ColumnSpec("enacted", "date"),
    ColumnSpec("policed", "date"),
    ColumnSpec("backend_register", "text", "{}", 1024, feedback=True),
    ColumnSpec("backend_need_delete", "bool", False, required=True),
    ColumnSpec("backend_need_reap", "bool", False, required=True),
    ColumnSpec("backend_status", "text", "Provisioning in progress", 1024, True, True),
    ColumnSpec("backend_code", "int", 0, required=True, feedback=True, int_range=INT32),
    ColumnSpec("deleted", "bool", False, required=True),
    ColumnSpec("write_protect", "bool", False, required=True),
    ColumnSpec("lazy_blocked", "bool", False, required=True),
    ColumnSpec("no_sync", "bool", False, required=True),
    ColumnSpec("no_policy", "bool", False, required=True),
    ColumnSpec("policy_status", "text", "Policy in process", 1024, feedback=True),
    ColumnSpec("policy_code", "int", 0, feedback=True, int_range=INT32),
    ColumnSpec("leaf_model_name", "text", None, 1024, required=True),
    ColumnSpec("backend_need_delete_policy", "bool", False, required=True),
    ColumnSpec("xos_managed", "bool", True, required=True),
    ColumnSpec("backend_handle", "text", None, 1024, feedback=True),
    ColumnSpec("changed_by_step", "date"),
    ColumnSpec("changed_by_policy", "date"),
)
LIFECYCLE: dict[str, ColumnSpec] = {c.name: c for c in _LIFECYCLE}

# Fields only the synchronizer may change, whatever the model's xproto says.
FEEDBACK_ALWAYS = frozenset(
    {
        "backend_code",
        "backend_status",
        "backend_register",
        "policy_code",
        "policy_status",
        "backend_handle",
    }
)


@dataclass(frozen=True, slots=True)
class ManySpec:
    """A many-to-many link, read and written as `<x>_ids`."""

    name: str
    peer: str
    table: sa.Table


@dataclass(eq=False)
class ModelTable:
    """A model's columns and, unless the model is abstract, its table."""

    model: Model
    columns: dict[str, ColumnSpec]
    many: dict[str, ManySpec]
    table: sa.Table | None
    # This model and every model derived from it that has a table: where its objects live.
    concrete: list[ModelTable] = field(default_factory=list)
    _feedback: frozenset[str] | None = field(default=None, init=False, repr=False)
    # The model's name, kept as a plain attribute: writes ask for it several times per object.
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.model.name

    def accepts(self, name: str) -> bool:
        return name in self.columns or name in self.many

    def feedback_columns(self) -> frozenset[str]:
        # Asked on every write; the columns never change once the table is built.
        if self._feedback is None:
            self._feedback = (
                frozenset(n for n, c in self.columns.items() if c.feedback) | FEEDBACK_ALWAYS
            )
        return self._feedback


def build_tables(schema: Schema, metadata: sa.MetaData) -> dict[str, ModelTable]:
    """A `ModelTable` per model of `schema`, keyed by model name, with tables in `metadata`."""
    internal_tables(metadata)
    tables: dict[str, ModelTable] = {}
    seen: dict[str, str] = {}
    for model in schema.models:
        if model.name in tables:
            continue  # same name in another package: the first one wins, as Schema.get does
        table_name = model.name.lower()
        if table_name in seen:
            raise ValueError(
                f"models {seen[table_name]} and {model.name} would share table {table_name!r}"
            )
        seen[table_name] = model.name
        tables[model.name] = _model_table(model, table_name, metadata)
    for mt in tables.values():
        mt.concrete = [
            other
            for other in tables.values()
            if other.table is not None and other.model.is_a(mt.name)
        ]
    return tables


def internal_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    """The id allocator, the change log and the key-value metadata table."""
    objects = sa.Table(
        OBJECT_TABLE,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    changes = sa.Table(
        CHANGE_TABLE,
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("object_id", sa.Integer, nullable=False),
        # When the change committed (store time), for retention (`SqlStore.forget_changes`).
        # NULL on rows written before the column existed: those count as old.
        sa.Column("at", sa.Float(precision=53), nullable=True),
        sqlite_autoincrement=True,
    )
    meta = sa.Table(
        META_TABLE,
        metadata,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    return objects, changes, meta


def _model_table(model: Model, table_name: str, metadata: sa.MetaData) -> ModelTable:
    columns: dict[str, ColumnSpec] = {}
    many: dict[str, ManySpec] = {}
    abstract = model.options.flag("abstract")
    for f in model.fields:
        if f.name == "id":
            continue
        if f.link is not None and f.link.is_many:
            assoc = None if abstract else _association(metadata, table_name, f.name)
            if assoc is not None:
                many[f.column_name] = ManySpec(f.column_name, f.link.peer_name, assoc)
            continue
        columns[f.column_name] = LIFECYCLE.get(f.column_name) or column_for_field(f)
    for name, spec in LIFECYCLE.items():
        columns.setdefault(name, spec)
    table = None
    if not abstract:
        table = sa.Table(
            table_name,
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            *(sa.Column(c.name, sql_type(c), nullable=True) for c in columns.values()),
        )
    return ModelTable(model, columns, many, table)


def _association(metadata: sa.MetaData, table_name: str, field_name: str) -> sa.Table:
    name = f"xsync_m2m_{table_name}_{field_name.lower()}"
    if len(name) > MAX_NAME:
        # PostgreSQL would silently cut the name, and the next open would not find the table.
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}_{digest}"
    return sa.Table(
        name,
        metadata,
        sa.Column("src_id", sa.Integer, primary_key=True),
        sa.Column("dst_id", sa.Integer, primary_key=True, index=True),
    )


_SQL_TYPES: dict[Kind, type[sa.types.TypeEngine[Any]]] = {
    "int": sa.Integer,
    "bigint": sa.BigInteger,
    "float": sa.Float,
    "date": sa.Float,
    "bool": sa.Boolean,
}


def sql_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    if spec.kind == "text":
        return sa.String(spec.max_length) if spec.max_length else sa.Text()
    if spec.kind in ("float", "date"):
        return sa.Float(precision=53)
    return _SQL_TYPES[spec.kind]()
