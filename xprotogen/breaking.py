"""`xsgen breaking`: what a change of the models breaks, rule by rule, in the spirit of `buf breaking`.

Three consumers can break, and each rule belongs to one family:

* `wire`: clients of the generated API (field numbers, types, cardinality, links, removals);
* `data`: rows already in the store (required without default, shorter max_length, unique,
  choices or enum values removed);
* `sync`: running synchronizers (the sync order of model-deps, base classes, `app_label`).

Models are matched by name and fields by name within a model; a field is compared as its
model sees it (inherited fields included, numbered as the wire numbers them), and each is
reported once, where it is declared. A finding points at the new text when the thing is still
there and at the old text when it is gone. Adding an optional field, a model or a help text
reports nothing.
"""

from __future__ import annotations

import ast as pyast
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence, TextIO

from . import ast
from .diagnostics import Diagnostic
from .schema import Field, Model, Schema
from .targets.deps import model_deps


@dataclass(frozen=True)
class Rule:
    id: str
    family: str
    summary: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("field-number-changed", "wire", "a field's number changed"),
        Rule(
            "field-number-reused",
            "wire",
            "a new field took the number of a removed or renumbered one",
        ),
        Rule("field-type-changed", "wire", "a field's type changed"),
        Rule(
            "field-cardinality-changed",
            "wire",
            "a field became repeated or single, or a link's kind changed",
        ),
        Rule("field-removed", "wire", "a field was removed"),
        Rule("model-removed", "wire", "a model was removed"),
        Rule(
            "link-target-changed", "wire", "a link points at another model (or through another one)"
        ),
        Rule("link-reverse-changed", "wire", "a link's reverse name changed"),
        Rule("reverse-id-changed", "wire", "a link's reverse id changed"),
        Rule(
            "required-without-default",
            "data",
            "a field is required with no default for existing rows",
        ),
        Rule(
            "max-length-shrunk",
            "data",
            "max_length became smaller (or was set on an unbounded field)",
        ),
        Rule("unique-added", "data", "a field became unique"),
        Rule("choices-removed", "data", "a value of choices or of an enum was removed"),
        Rule("deps-edge-added", "sync", "a model-deps edge between existing models was added"),
        Rule(
            "deps-edge-reversed", "sync", "a model-deps edge between existing models was reversed"
        ),
        Rule("base-changed", "sync", "a model's base classes changed"),
        Rule("app-label-changed", "sync", "a model's app_label changed"),
    )
}
FAMILIES = ("wire", "data", "sync")


def select_rules(only: Iterable[str] = (), leave_out: Iterable[str] = ()) -> frozenset[str]:
    """Rule ids named by `only` (all when empty) minus `leave_out`; names may be families.

    Raises `ValueError` naming an unknown rule or family.
    """

    def expand(names: Iterable[str]) -> set[str]:
        chosen: set[str] = set()
        for name in names:
            if name in RULES:
                chosen.add(name)
            elif name in FAMILIES:
                chosen.update(r.id for r in RULES.values() if r.family == name)
            else:
                raise ValueError(
                    f"unknown rule or family {name!r}; see xsgen breaking --list-rules"
                )
        return chosen

    selected = expand(only) if list(only) else set(RULES)
    return frozenset(selected - expand(leave_out))


def find_breaking_changes(
    old: Schema, new: Schema, rules: frozenset[str] | None = None
) -> list[Diagnostic]:
    """Every breaking change from `old` to `new`, sorted by place; only `rules` if given."""
    findings = [*_model_changes(old, new), *_enum_changes(old, new), *_deps_changes(old, new)]
    chosen = [d for d in findings if rules is None or d.rule in rules]
    return sorted(dict.fromkeys(chosen), key=Diagnostic.sort_key)


def _finding(rule: str, span: ast.Span, message: str) -> Diagnostic:
    assert rule in RULES, rule
    return Diagnostic("error", message, rule, span)


# --- models and fields ----------------------------------------------------------------------


def _model_changes(old: Schema, new: Schema) -> Iterator[Diagnostic]:
    # A name defined twice (an error lint reports) pairs the first with the first, and so on.
    by_name: dict[str, list[Model]] = {}
    for model in new.models:
        by_name.setdefault(model.fqn, []).append(model)
    seen: dict[str, int] = {}
    for before in old.models:
        index = seen[before.fqn] = seen.get(before.fqn, -1) + 1
        candidates = (
            by_name.get(before.fqn)
            or by_name.get(before.name)
            or [m for m in new.models if m.name == before.name]
        )
        after = candidates[index] if index < len(candidates) else None
        if after is None:
            yield _finding("model-removed", before.span, f"model '{before.name}' was removed")
            continue
        yield from _model_change(before, after)


def _model_change(before: Model, after: Model) -> Iterator[Diagnostic]:
    old_bases = [b.name for b in before.base_refs]
    new_bases = [b.name for b in after.base_refs]
    bases_changed = old_bases != new_bases
    if bases_changed:
        yield _finding(
            "base-changed",
            after.span,
            f"the bases of '{after.name}' changed from ({', '.join(old_bases)}) to ({', '.join(new_bases)})",
        )
    if before.app_label != after.app_label:
        yield _finding(
            "app-label-changed",
            after.span,
            f"the app_label of '{after.name}' changed from {_shown(before.app_label)} to {_shown(after.app_label)}",
        )
    for field in before.own_fields:
        moved = after.field(field.name)
        if moved is None:
            yield _finding(
                "field-removed", after.span, f"field '{after.name}.{field.name}' was removed"
            )
            continue
        wired = before.field(field.name) or field  # numbered as `before` numbers it
        yield from _field_change(after, wired, moved, renumbering_explained=bases_changed)
    yield from _new_fields(before, after)


def _field_change(
    model: Model, before: Field, after: Field, *, renumbering_explained: bool
) -> Iterator[Diagnostic]:
    name = f"{model.name}.{after.name}"
    span = after.span
    if (
        before.number != after.number
        and before.number
        and after.number
        and not renumbering_explained
    ):
        yield _finding(
            "field-number-changed",
            span,
            f"field '{name}' changed number from {before.declared_number} to {after.declared_number}"
            + _wire_numbers(before, after),
        )
    yield from _type_change(name, span, before, after)
    if before.link is not None and after.link is not None:
        yield from _link_change(name, span, before, after)
    yield from _data_change(name, span, before, after)


def _wire_numbers(before: Field, after: Field) -> str:
    """The numbers on the wire, when inheritance makes them differ from the written ones."""
    if str(before.number) == before.declared_number and str(after.number) == after.declared_number:
        return ""
    return f" ({before.number} to {after.number} in the API)"


def _type_change(name: str, span: ast.Span, before: Field, after: Field) -> Iterator[Diagnostic]:
    if before.is_link != after.is_link:
        kinds = ("a link", "a scalar") if before.is_link else ("a scalar", "a link")
        yield _finding(
            "field-type-changed", span, f"field '{name}' changed from {kinds[0]} to {kinds[1]}"
        )
    elif not before.is_link and before.type != after.type:
        yield _finding(
            "field-type-changed",
            span,
            f"field '{name}' changed type from {before.type} to {after.type}",
        )
    if (before.modifier == "repeated") != (after.modifier == "repeated"):
        yield _finding(
            "field-cardinality-changed",
            span,
            f"field '{name}' changed from {before.modifier} to {after.modifier}",
        )
    if (
        before.link is not None
        and after.link is not None
        and before.link.link_type != after.link.link_type
    ):
        yield _finding(
            "field-cardinality-changed",
            span,
            f"link '{name}' changed from {before.link.link_type} to {after.link.link_type}",
        )


def _link_change(name: str, span: ast.Span, before: Field, after: Field) -> Iterator[Diagnostic]:
    old, new = before.link, after.link
    assert old is not None and new is not None
    if old.peer_name != new.peer_name:
        yield _finding(
            "link-target-changed",
            span,
            f"link '{name}' now points at '{new.peer_name}', not '{old.peer_name}'",
        )
    old_through = old.through_ref.name if old.through_ref else None
    new_through = new.through_ref.name if new.through_ref else None
    if old_through != new_through:
        yield _finding(
            "link-target-changed",
            span,
            f"link '{name}' now goes through {_shown(new_through)}, not {_shown(old_through)}",
        )
    if old.reverse_name != new.reverse_name:
        yield _finding(
            "link-reverse-changed",
            span,
            f"the reverse name of link '{name}' changed from {_shown(old.reverse_name)} to {_shown(new.reverse_name)}",
        )
    if old.reverse_id != new.reverse_id:
        yield _finding(
            "reverse-id-changed",
            span,
            f"the reverse id of link '{name}' changed from {_shown(old.reverse_id)} to {_shown(new.reverse_id)}",
        )


def _data_change(name: str, span: ast.Span, before: Field, after: Field) -> Iterator[Diagnostic]:
    if not before.required and after.required and "default" not in after.options:
        yield _finding(
            "required-without-default",
            span,
            f"field '{name}' became required with no default for existing rows",
        )
    old_length, new_length = _max_length(before), _max_length(after)
    if new_length is not None and (old_length is None or new_length < old_length):
        was = "no limit" if old_length is None else str(old_length)
        yield _finding(
            "max-length-shrunk", span, f"field '{name}' max_length went from {was} to {new_length}"
        )
    for option in ("unique", "unique_with"):
        if not _is_set(before, option) and _is_set(after, option):
            yield _finding("unique-added", span, f"field '{name}' became {option}")
    old_choices, new_choices = _choices(before), _choices(after)
    removed = [c for c in old_choices or () if new_choices is not None and c not in new_choices]
    if removed:
        yield _finding(
            "choices-removed",
            span,
            f"field '{name}' no longer allows {', '.join(map(repr, removed))}",
        )


def _new_fields(before: Model, after: Model) -> Iterator[Diagnostic]:
    old_numbers = {f.number: f.name for f in before.fields if f.number}
    for field in after.own_fields:
        if before.field(field.name) is not None:
            continue
        name = f"{after.name}.{field.name}"
        owner = old_numbers.get(field.number)
        if owner is not None and (after.field(owner) is None or after.field(owner).number != field.number):  # type: ignore[union-attr]
            yield _finding(
                "field-number-reused",
                field.span,
                f"new field '{name}' reuses number {field.number}, which was '{owner}'",
            )
        if field.required and "default" not in field.options:
            yield _finding(
                "required-without-default",
                field.span,
                f"new field '{name}' is required with no default for existing rows",
            )


def _max_length(field: Field) -> int | None:
    value = field.options.value("max_length")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_set(field: Field, option: str) -> bool:
    value = field.options.value(option)
    return value is not None and value is not False and value != ""


def _choices(field: Field) -> list[object] | None:
    """The stored values `choices` allows, or None when the field has no readable choices."""
    text = field.options.text("choices")
    if not text:
        return None
    try:
        pairs = pyast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(pairs, (tuple, list)):
        return None
    return [p[0] if isinstance(p, (tuple, list)) and p else p for p in pairs]


def _shown(value: object) -> str:
    return "none" if value is None else f"'{value}'"


# --- enums (written in the files, not part of the schema) ----------------------------------


def _enum_changes(old: Schema, new: Schema) -> Iterator[Diagnostic]:
    after: dict[str, tuple[ast.Enum, set[str]]] = {}
    for name, enum in _enums(new.files):
        after.setdefault(name, (enum, set()))[1].update(v.name for v in enum.values)
    reported: set[tuple[str, str]] = set()
    for name, enum in _enums(old.files):
        if name not in after:
            continue  # a removed enum: the fields that used it are reported, if any
        now, kept = after[name]
        for value in enum.values:
            if value.name not in kept and (name, value.name) not in reported:
                reported.add((name, value.name))
                yield _finding(
                    "choices-removed",
                    now.span,
                    f"enum '{name}' no longer has the value '{value.name}'",
                )


def _enums(files: Iterable[ast.File]) -> Iterator[tuple[str, ast.Enum]]:
    def walk(items: Iterable[object], prefix: str) -> Iterator[tuple[str, ast.Enum]]:
        for item in items:
            if isinstance(item, ast.Enum):
                yield prefix + item.name, item
            elif isinstance(item, (ast.Message, ast.Extend)):
                yield from walk(item.body, f"{prefix}{item.name}.")

    for file in files:
        yield from walk(file.items, "")


# --- the sync order --------------------------------------------------------------------------


def _deps_changes(old: Schema, new: Schema) -> Iterator[Diagnostic]:
    existing = {m.name for m in old.models}
    old_edges = _edges(old)
    for (model, peer), field in _edges(new).items():
        if model not in existing or peer not in existing or (model, peer) in old_edges:
            continue
        span = field.span if field is not None else new.model(model).span
        if (peer, model) in old_edges:
            yield _finding(
                "deps-edge-reversed",
                span,
                f"'{model}' now syncs after '{peer}'; '{peer}' used to sync after '{model}'",
            )
        else:
            yield _finding(
                "deps-edge-added",
                span,
                f"'{model}' now depends on '{peer}', which changes the sync order of existing objects",
            )


def _edges(schema: Schema) -> dict[tuple[str, str], Field | None]:
    """(model, peer) for each model-deps edge, with the link that makes it when there is one."""
    edges: dict[tuple[str, str], Field | None] = {}
    for model, deps in model_deps(schema).items():
        links: Callable[[str], Field | None] = _link_to(schema.get(model))
        for peer, *_ in deps:
            edges.setdefault((model, peer), links(peer))
    return edges


def _link_to(model: Model | None) -> Callable[[str], Field | None]:
    def find(peer: str) -> Field | None:
        if model is None:
            return None
        return next(
            (f for f in model.own_links if f.link is not None and f.link.peer_name == peer), None
        )

    return find


# --- the command ---------------------------------------------------------------------------

EXIT_SAFE, EXIT_BREAKING, EXIT_USAGE = 0, 1, 2


def run_breaking(
    paths: Sequence[str],
    *,
    against: str | None = None,
    only: Sequence[str] = (),
    leave_out: Sequence[str] = (),
    output_format: str = "text",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """`xsgen breaking OLD NEW` or `xsgen breaking --against REV PATH...`; returns the exit code.

    Syntax errors in either set are raised as `XprotoError` for the CLI to show.
    """
    from .diagnostics import format_json, format_plain
    from .revisions import RevisionError, read_at_revision, read_on_disk, schema_of

    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        rules = select_rules(only, leave_out)
    except ValueError as exc:
        print(f"xsgen breaking: error: {exc}", file=err)
        return EXIT_USAGE
    if against is None and len(paths) != 2:
        print(
            "xsgen breaking: error: give OLD and NEW (files or folders), or --against REVISION PATH...",
            file=err,
        )
        return EXIT_USAGE
    new_paths = list(paths) if against is not None else [paths[1]]
    try:
        old_sources = (
            read_at_revision(against, new_paths)
            if against is not None
            else read_on_disk([paths[0]])
        )
        new_sources = read_on_disk(new_paths)
    except RevisionError as exc:
        print(f"xsgen breaking: error: {exc}", file=err)
        return EXIT_USAGE
    if not new_sources:
        print(f"xsgen breaking: error: no xproto files in {', '.join(new_paths)}", file=err)
        return EXIT_USAGE
    findings = find_breaking_changes(schema_of(old_sources), schema_of(new_sources), rules)
    if output_format == "json":
        print(format_json(findings), file=out)
    else:
        for finding in findings:
            print(format_plain(finding), file=out)
    return EXIT_BREAKING if findings else EXIT_SAFE


def describe_rules() -> str:
    """One line per rule: its id, family and what it catches."""
    return "\n".join(f"{r.id:28} {r.family:5} {r.summary}" for r in RULES.values())
