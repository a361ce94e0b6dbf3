"""Schema to proto3: one API file per app, in the XOS protoapi mapping (reference 6.1).

Built in two steps: `build_proto_api` turns the schema into a small typed model of the
output (apps, messages, fields) and checks it; the templates only print that model. The
field mapping:

* `int32 id = 1`, then every flattened field at its `Field.number`, as proto3 `optional`
  so that a value set to its default is told apart from an unset one;
* a link to one object is `optional int32 <name>_id`, a many-to-many link
  `repeated int32 <name>_ids`, a reverse link `repeated int32 <reverse>_ids`;
* a timestamp (`content_type = "date"`) is `double` seconds; `float` is widened to `double`
  so values round-trip unchanged through the store;
* a model that does not inherit XOSBase gets the lifecycle fields anyway, numbered
  `LIFECYCLE_BASE + <XOSBase number>` so they never collide with declared fields;
* a field whose number is unusable moves to `SPILL_BASE` and up (see `_settle_numbers`).

Messages shared by every app (ID, Query, Change, ...) live in `xsync_common.proto`.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..ast import NOWHERE, Span
from ..diagnostics import Diagnostic, XprotoError
from ..output import write_atomically
from ..render import render
from ..schema import Field, Model, Schema

PACKAGE = "xos"
COMMON_FILE = "xsync_common.proto"
COMMON_PACKAGE = "xsync"
SKIPPED_MODELS = frozenset({"XOSBase"})  # abstract holder of the lifecycle fields, as in XOS
LIFECYCLE_BASE = 1950
# Fields whose xproto number is unusable (0, or taken by id or an earlier field: xosgenx
# refuses such files) are renumbered from here, in field order, so the file still compiles.
SPILL_BASE = 2100

# XOSBase's fields: (name, proto type, number in XOSBase). Kept here, not read from
# core.xproto, so that a service file compiles alone.
LIFECYCLE_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("created", "double", 2),
    ("updated", "double", 3),
    ("enacted", "double", 4),
    ("policed", "double", 5),
    ("backend_register", "string", 6),
    ("backend_need_delete", "bool", 7),
    ("backend_need_reap", "bool", 8),
    ("backend_status", "string", 9),
    ("backend_code", "int32", 10),
    ("deleted", "bool", 11),
    ("write_protect", "bool", 12),
    ("lazy_blocked", "bool", 13),
    ("no_sync", "bool", 14),
    ("no_policy", "bool", 15),
    ("policy_status", "string", 16),
    ("policy_code", "int32", 17),
    ("leaf_model_name", "string", 18),
    ("backend_need_delete_policy", "bool", 19),
    ("xos_managed", "bool", 20),
    ("backend_handle", "string", 21),
    ("changed_by_step", "double", 22),
    ("changed_by_policy", "double", 23),
)

_SCALAR_TYPES = {
    "string": "string",
    "bool": "bool",
    "int32": "int32",
    "uint32": "uint32",
    "sint32": "sint32",
    "fixed32": "fixed32",
    "sfixed32": "sfixed32",
    "int64": "int64",
    "uint64": "uint64",
    "sint64": "sint64",
    "fixed64": "fixed64",
    "sfixed64": "sfixed64",
    "float": "double",
    "double": "double",
}
_MAX_FIELD_NUMBER = 536_870_911
_PROTOBUF_RESERVED = range(19000, 20000)

FieldKind = str  # "id", "scalar", "link", "many", "reverse", "lifecycle"


@dataclass(frozen=True, slots=True)
class ProtoField:
    """One line of a message: `[optional|repeated] <type> <name> = <number>;`."""

    name: str
    type: str
    number: int
    label: str  # "", "optional" or "repeated"
    kind: FieldKind
    span: Span = NOWHERE

    @property
    def is_repeated(self) -> bool:
        return self.label == "repeated"


# The RPCs every model gets, in the order the service lists them: (name prefix, request type,
# response type), "{m}" standing for the model's message, "{p}" its list message, "{u}" its
# update request, and a leading "stream " a stream of them. The .proto text and the runtime's
# server and client all read this table.
MODEL_RPCS: tuple[tuple[str, str, str], ...] = (
    ("List", "google.protobuf.Empty", "{p}"),
    ("Filter", f"{COMMON_PACKAGE}.Query", "{p}"),
    ("Get", f"{COMMON_PACKAGE}.ID", "{m}"),
    ("Create", "{m}", "{m}"),
    # Many objects in one call and one transaction (each still gets its change-log row).
    # Not "CreateMany": "CreateMany" + "Foo" would clash with "Create" + "ManyFoo".
    ("BulkCreate", "{p}", "{p}"),
    # Objects sent one by one on one stream (a loader's), committed in chunks; each chunk's
    # records come back as one list. "StreamCreate", not "CreateStream": "Create" + "StreamFoo".
    ("StreamCreate", "stream {m}", "stream {p}"),
    ("Update", "{u}", "{m}"),
    ("Delete", f"{COMMON_PACKAGE}.ID", "google.protobuf.Empty"),
    ("Purge", f"{COMMON_PACKAGE}.ID", "google.protobuf.Empty"),
    ("Pending", f"{COMMON_PACKAGE}.PendingRequest", "{p}"),
)
# The RPCs of every service besides its models' (name, request type, response type), listed
# after them; the server and the served-methods test read this table too.
SERVICE_RPCS: tuple[tuple[str, str, str], ...] = (
    ("Watch", f"{COMMON_PACKAGE}.WatchRequest", f"stream {COMMON_PACKAGE}.Change"),
    ("GetVersion", "google.protobuf.Empty", f"{COMMON_PACKAGE}.Version"),
    # Where the change log ends, without reading it: a watcher that wants only what comes
    # next starts its Watch there.
    ("LatestChange", "google.protobuf.Empty", f"{COMMON_PACKAGE}.LatestChange"),
)


@dataclass(frozen=True, slots=True)
class ProtoModel:
    """A model's message, its list message and its update request."""

    name: str
    plural: str
    fields: tuple[ProtoField, ...]
    span: Span = NOWHERE

    @property
    def update_request(self) -> str:
        return f"Update{self.name}Request"

    def message_type(self, spec: str) -> str:
        """A type of `MODEL_RPCS` (`{m}`, `{p}`, `{u}` or a full name) for this model."""
        return spec.format(m=self.name, p=self.plural, u=self.update_request)

    @property
    def rpcs(self) -> list[tuple[str, str, str]]:
        """(method name, request type, response type) of each of this model's RPCs."""
        return [
            (prefix + self.name, self.message_type(request), self.message_type(response))
            for prefix, request, response in MODEL_RPCS
        ]

    @property
    def reverse_fields(self) -> tuple[ProtoField, ...]:
        return tuple(f for f in self.fields if f.kind == "reverse")


@dataclass(frozen=True, slots=True)
class ProtoApp:
    """One generated file: `<module>.proto`, with service `<module>` in package `xos`."""

    app: str
    module: str
    models: tuple[ProtoModel, ...]

    @property
    def file_name(self) -> str:
        return f"{self.module}.proto"

    @property
    def service(self) -> str:
        return self.module

    @property
    def service_full_name(self) -> str:
        return f"{PACKAGE}.{self.service}"


@dataclass(frozen=True, slots=True)
class ProtoApi:
    """Every app of a schema, sorted by module name."""

    apps: tuple[ProtoApp, ...]

    def model(self, name: str) -> ProtoModel:
        for app in self.apps:
            for model in app.models:
                if model.name == name:
                    return model
        raise KeyError(name)

    def app_of(self, model_name: str) -> ProtoApp:
        for app in self.apps:
            if any(m.name == model_name for m in app.models):
                return app
        raise KeyError(model_name)


# --- schema -> output model ----------------------------------------------------------------


def module_name(app: str) -> str:
    """A Python- and proto-safe identifier for an app label (`att-workflow-driver` -> `att_workflow_driver`)."""
    ident = re.sub(r"\W", "_", app.strip().lower()) or "app"
    return f"_{ident}" if ident[0].isdigit() else ident


def app_of(model: Model) -> str:
    """The model's `app_label`, else the stem of the file that defines it."""
    return model.app_label or Path(model.file).stem


def build_proto_api(schema: Schema) -> ProtoApi:
    """The output model for `schema`; raises `XprotoError` listing every clash found."""
    grouped: dict[str, tuple[str, list[ProtoModel]]] = {}
    seen: set[str] = set()
    for model in schema.models:
        if model.name in SKIPPED_MODELS or model.name in seen:
            continue  # a second model of the same name in another package: the first wins
        seen.add(model.name)
        app = app_of(model)
        grouped.setdefault(module_name(app), (app, []))[1].append(_proto_model(model))
    apps = tuple(
        ProtoApp(app, module, tuple(sorted(models, key=lambda m: m.name)))
        for module, (app, models) in sorted(grouped.items())
    )
    api = ProtoApi(apps)
    problems = _check(api)
    if problems:
        raise XprotoError(problems)
    return api


def _proto_model(model: Model) -> ProtoModel:
    fields = [ProtoField("id", "int32", 1, "", "id", model.span)]
    fields.extend(_proto_field(f) for f in model.fields)
    fields.extend(
        ProtoField(f"{r.name}_ids", "int32", r.number, "repeated", "reverse", r.source_field.span)
        for r in model.reverse_links
    )
    declared = {f.name for f in fields}
    fields.extend(
        ProtoField(name, type_, LIFECYCLE_BASE + number, "optional", "lifecycle", model.span)
        for name, type_, number in LIFECYCLE_FIELDS
        if name not in declared
    )
    fields = _settle_numbers(fields)
    return ProtoModel(
        model.name, model.plural, tuple(sorted(fields, key=lambda f: f.number)), model.span
    )


def _settle_numbers(fields: list[ProtoField]) -> list[ProtoField]:
    """Drop repeated names (diamond inheritance copies a field twice); move clashing numbers."""
    kept: list[ProtoField] = []
    names: set[str] = set()
    numbers: set[int] = set()
    spill = SPILL_BASE
    for f in fields:
        if f.name in names:
            continue
        if (
            f.number in numbers
            or not 1 <= f.number <= _MAX_FIELD_NUMBER
            or f.number in _PROTOBUF_RESERVED
        ):
            while spill in numbers:
                spill += 1
            f = replace(f, number=spill)
        kept.append(f)
        names.add(f.name)
        numbers.add(f.number)
    return kept


def _proto_field(f: Field) -> ProtoField:
    if f.link is not None and f.link.is_many:
        return ProtoField(f.column_name, "int32", f.number, "repeated", "many", f.span)
    if f.link is not None:
        return ProtoField(f.column_name, "int32", f.number, "optional", "link", f.span)
    return ProtoField(f.name, proto_type(f), f.number, "optional", "scalar", f.span)


def proto_type(f: Field) -> str:
    """The proto3 scalar type of a non-link field; unknown types are kept as text, as the store does."""
    if f.type == "string" and f.content_type == "date":
        return "double"
    return _SCALAR_TYPES.get(f.type, "string")


# --- checks: anything that would make protoc fail is reported against the xproto ----------


def _check(api: ProtoApi) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    top_level: dict[str, str] = {}
    for app in api.apps:
        for model in app.models:
            for name, what in (
                (model.name, "model"),
                (model.plural, "list message"),
                (model.update_request, "update request"),
            ):
                other = top_level.get(name)
                if other is not None:
                    problems.append(
                        _clash(
                            model.span,
                            f"{what} '{name}' of model '{model.name}' clashes with {other}",
                        )
                    )
                top_level.setdefault(name, f"the {what} of model '{model.name}'")
            problems.extend(_check_fields(model))
    return problems


def _check_fields(model: ProtoModel) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    names: dict[str, ProtoField] = {}
    numbers: dict[int, ProtoField] = {}
    for f in model.fields:
        if not 1 <= f.number <= _MAX_FIELD_NUMBER or f.number in _PROTOBUF_RESERVED:
            problems.append(
                _clash(
                    f.span,
                    f"field '{model.name}.{f.name}' has number {f.number}, which proto3 does not allow",
                )
            )
            continue
        if f.name in names:
            problems.append(_clash(f.span, f"model '{model.name}' has two fields named '{f.name}'"))
        if f.number in numbers:
            problems.append(
                _clash(
                    f.span,
                    f"fields '{model.name}.{f.name}' and '{numbers[f.number].name}' share number {f.number}",
                )
            )
        names.setdefault(f.name, f)
        numbers.setdefault(f.number, f)
    return problems


def _clash(span: Span, message: str) -> Diagnostic:
    return Diagnostic("error", message, "proto-clash", span)


# --- rendering and writing -------------------------------------------------------------------


def render_proto_files(api: ProtoApi) -> dict[str, str]:
    """File name -> text for every app, plus the shared `xsync_common.proto`."""
    texts = {COMMON_FILE: render("proto/common.proto.j2", package=COMMON_PACKAGE)}
    for app in api.apps:
        texts[app.file_name] = render(
            "proto/app.proto.j2",
            app=app,
            package=PACKAGE,
            common_file=COMMON_FILE,
            common=COMMON_PACKAGE,
            service_rpcs=SERVICE_RPCS,
        )
    return texts


@dataclass
class ProtoOutput:
    """What `write_proto` produced, by file name."""

    protos: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)


def write_proto(schema: Schema, out_dir: str | Path, *, compile: bool = True) -> ProtoOutput:
    """Write the .proto files (and, with `compile`, the Python modules) into `out_dir`.

    Everything is produced in a temporary directory first and moved into place only when
    every step succeeded, so a failure leaves `out_dir` as it was.
    """
    from ..compile_proto import compile_protos

    api = build_proto_api(schema)
    texts = render_proto_files(api)
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    output = ProtoOutput()
    with tempfile.TemporaryDirectory(prefix=".xsgen-proto-", dir=target) as tmp:
        staging = Path(tmp)
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8", newline="\n")
        if compile:
            compile_protos(staging, sorted(texts), staging)
        produced = sorted(p.name for p in staging.iterdir() if p.is_file())
        for name in produced:
            write_atomically(target / name, (staging / name).read_bytes())
            (output.protos if name.endswith(".proto") else output.modules).append(name)
    return output
