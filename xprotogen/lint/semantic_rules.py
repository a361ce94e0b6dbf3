"""Our checks on top of xosgenx's: mistakes it accepts silently or crashes on.

Each rule is one function from a schema to the diagnostics it finds; `SEMANTIC_RULES`
lists them all.
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterable, Iterator

from .. import ast
from ..core_models import builtin_core_names
from ..diagnostics import Diagnostic
from ..options import FIELD_OPTIONS, MODEL_OPTION_PREFIXES, MODEL_OPTIONS
from ..schema import EXTERNAL_BASES, Field, Model, ReverseLink, Schema

RULE_UNDEFINED_BASE = "undefined-base"
RULE_UNDEFINED_LINK_TARGET = "undefined-link-target"
RULE_DUPLICATE_MODEL = "duplicate-model"
RULE_DUPLICATE_FIELD = "duplicate-field"
RULE_REVERSE_NAME_COLLISION = "reverse-name-collision"
RULE_UNKNOWN_OPTION = "unknown-option"
RULE_OPTION_VALUE_KIND = "option-value-kind"
RULE_UNDEFINED_POLICY = "undefined-policy"

_LIST_IT_FIRST = "; if another file defines it, list that file first"

SemanticRule = Callable[[Schema], Iterator[Diagnostic]]


# Close enough for a typo (Servce, Service) but not for a shared suffix (Service, VSGService).
_SUGGESTION_CUTOFF = 0.8


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(
        name, sorted(set(candidates) - {name}), n=1, cutoff=_SUGGESTION_CUTOFF
    )
    return f"; did you mean '{close[0]}'?" if close else ""


def resolves(schema: Schema, ref: ast.DottedName) -> bool:
    """Whether `ref` names a model of the schema, qualified or not."""
    return schema.get(ref.text) is not None or schema.get(ref.name) is not None


def _where(span: ast.Span) -> str:
    return f"{span.file}:{span.line}"


def _known_names(schema: Schema) -> set[str]:
    """Names a typo may have meant: the inputs' models and the built-in core's."""
    return {m.name for m in schema.models} | set(builtin_core_names())


def check_undefined_bases(schema: Schema) -> Iterator[Diagnostic]:
    """A base class that no input defines (XOS's Python mixins excepted)."""
    names = _known_names(schema)
    for model in schema.models:
        for ref in model.base_refs:
            if ref.name in EXTERNAL_BASES or resolves(schema, ref):
                continue
            hint = _did_you_mean(ref.name, set(names) - {model.name}) or _LIST_IT_FIRST
            message = f"model '{model.name}' derives from undefined model '{ref.text}'{hint}"
            yield Diagnostic("error", message, RULE_UNDEFINED_BASE, ref.span)


def check_undefined_link_targets(schema: Schema) -> Iterator[Diagnostic]:
    """A link to a model that no input defines."""
    names = _known_names(schema)
    for model in schema.models:
        for field in model.own_links:
            assert field.link is not None
            ref = field.link.peer_ref
            if resolves(schema, ref):
                continue
            hint = _did_you_mean(ref.name, names) or _LIST_IT_FIRST
            message = (
                f"link '{model.name}.{field.name}' points at undefined model '{ref.text}'{hint}"
            )
            yield Diagnostic("error", message, RULE_UNDEFINED_LINK_TARGET, ref.span)


def check_duplicate_models(schema: Schema) -> Iterator[Diagnostic]:
    """Two models with the same (package-qualified) name; reported at the second."""
    first: dict[str, Model] = {}
    for model in schema.models:
        earlier = first.setdefault(model.fqn, model)
        if earlier is not model:
            message = f"model '{model.fqn}' is already defined at {_where(earlier.span)}"
            yield Diagnostic("error", message, RULE_DUPLICATE_MODEL, model.span)


def check_duplicate_fields(schema: Schema) -> Iterator[Diagnostic]:
    """Two fields of one model with the same name, inherited ones included.

    A clash is reported where it first arises: at the field that repeats a name, or at
    the model whose bases bring the name twice; not again in every model derived from it.
    """
    for model in schema.models:
        seen: dict[str, Field] = {}
        for field in model.fields:
            earlier = seen.setdefault(field.name, field)
            if earlier is field:
                continue
            if field.owner is model:
                yield Diagnostic(
                    "error", _field_clash(model, field, earlier), RULE_DUPLICATE_FIELD, field.span
                )
            elif not any(_count_fields(base, field.name) > 1 for base in model.bases):
                message = (
                    f"model '{model.name}' inherits field '{field.name}' from both "
                    f"'{earlier.owner.name}' and '{field.owner.name}'"
                )
                yield Diagnostic("error", message, RULE_DUPLICATE_FIELD, model.span)


def _count_fields(model: Model, name: str) -> int:
    return sum(1 for f in model.fields if f.name == name)


def _field_clash(model: Model, field: Field, earlier: Field) -> str:
    if earlier.owner is model:
        return f"field '{field.name}' is defined twice in model '{model.name}' (first at line {earlier.span.line})"
    return f"field '{model.name}.{field.name}' hides field '{field.name}' inherited from '{earlier.owner.name}'"


def check_reverse_name_collisions(schema: Schema) -> Iterator[Diagnostic]:
    """A reverse name that a peer already uses, for a field or for another link's reverse name.

    Reported at the link that brings the second name, and only on the model whose own
    reverse links or fields take part, so one clash is reported once.
    """
    for peer in schema.models:
        taken: dict[str, Field | ReverseLink] = {f.name: f for f in peer.fields}
        for reverse in peer.reverse_links:
            earlier = taken.setdefault(reverse.name, reverse)
            if earlier is reverse or not _involves(peer, reverse, earlier):
                continue
            yield Diagnostic(
                "error",
                _reverse_clash(peer, reverse, earlier),
                RULE_REVERSE_NAME_COLLISION,
                reverse.source_field.span,
            )


def _involves(peer: Model, reverse: ReverseLink, earlier: Field | ReverseLink) -> bool:
    own_reverse = any(r.source_field is reverse.source_field for r in peer.own_reverse_links)
    earlier_own = (
        earlier.owner is peer
        if isinstance(earlier, Field)
        else any(r.source_field is earlier.source_field for r in peer.own_reverse_links)
    )
    return own_reverse or earlier_own


def _reverse_clash(peer: Model, reverse: ReverseLink, earlier: Field | ReverseLink) -> str:
    head = (
        f"reverse name '{reverse.name}' of link '{reverse.source.name}.{reverse.source_field.name}'"
    )
    if isinstance(earlier, Field):
        return f"{head} clashes with field '{peer.name}.{earlier.name}'"
    other = f"{earlier.source.name}.{earlier.source_field.name}"
    return f"{head} is also the reverse name of link '{other}' ({_where(earlier.source_field.span)}) on '{peer.name}'"


def check_unknown_options(schema: Schema) -> Iterator[Diagnostic]:
    """File, message and field options that no target reads: most likely typos."""
    for file in schema.files:
        for item in file.items:
            if isinstance(item, ast.Option):
                yield from _unknown_model_option(item, "file")
            elif isinstance(item, ast.Message):
                for option in item.options:
                    yield from _unknown_model_option(option, "message")
                for field in item.fields:
                    yield from _unknown_field_options(field)


def _unknown_model_option(option: ast.Option, where: str) -> Iterator[Diagnostic]:
    if option.name in MODEL_OPTIONS or option.name.startswith(MODEL_OPTION_PREFIXES):
        return
    hint = _did_you_mean(option.name, MODEL_OPTIONS)
    yield Diagnostic(
        "warning", f"unknown {where} option '{option.name}'{hint}", RULE_UNKNOWN_OPTION, option.span
    )


def _unknown_field_options(field: ast.ScalarField | ast.LinkField) -> Iterator[Diagnostic]:
    for option in field.options:
        if option.name not in FIELD_OPTIONS:
            hint = _did_you_mean(option.name, FIELD_OPTIONS)
            message = f"unknown field option '{option.name}' on field '{field.name}'{hint}"
            yield Diagnostic("warning", message, RULE_UNKNOWN_OPTION, option.span)


def check_option_value_kinds(schema: Schema) -> Iterator[Diagnostic]:
    """A number or true/false as a file or message option value, which crashes xosgenx."""
    for file in schema.files:
        for item in file.items:
            if isinstance(item, ast.Option):
                yield from _option_value_kind(item, "file")
            elif isinstance(item, ast.Message):
                for option in item.options:
                    yield from _option_value_kind(option, "message")


def _option_value_kind(option: ast.Option, where: str) -> Iterator[Diagnostic]:
    value = option.value
    if value.kind == "number":
        fix = f'write it as a string: {option.name} = "{value.text}"'
        what = f"the number {value.text}"
    elif value.kind == "bool":
        bare = value.text.capitalize()
        fix = f'write it as a string or a bare name: {option.name} = "{bare}" or {option.name} = {bare}'
        what = f"'{value.text}'"
    else:
        return
    message = (
        f"{where} option '{option.name}' has {what} as its value, which xosgenx cannot read; {fix}"
    )
    yield Diagnostic(
        "error", message, RULE_OPTION_VALUE_KIND, value.span if value.span.line else option.span
    )


def check_undefined_policy_references(schema: Schema) -> Iterator[Diagnostic]:
    """A model (`message M::p`), field or `validators` option naming a policy no input defines.

    Calls between policies (`*p(x)`) are checked by the schema builder.
    """
    defined = schema.policies
    for model in schema.models:
        if model.policy is not None and model.policy not in defined:
            message = f"model '{model.name}' uses undefined policy '{model.policy}'{_did_you_mean(model.policy, defined)}"
            yield Diagnostic("error", message, RULE_UNDEFINED_POLICY, model.span)
        for field in model.own_fields:
            if field.policy is not None and field.policy not in defined:
                hint = _did_you_mean(field.policy, defined)
                message = f"field '{model.name}.{field.name}' uses undefined policy '{field.policy}'{hint}"
                yield Diagnostic("error", message, RULE_UNDEFINED_POLICY, field.span)
        yield from _undefined_validator_policies(model, defined)


def _undefined_validator_policies(model: Model, defined: Iterable[str]) -> Iterator[Diagnostic]:
    written = model.options.get("validators")
    if written is None:
        return
    known = set(defined)
    span = written.span if written.span.line else model.span
    # xosgenx splits the option on "," and then on ":"; the policy is the part before the ":".
    for entry in written.unquoted.split(","):
        name = entry.split(":", 1)[0].strip()
        if name and name not in known:
            message = (
                f"option validators of model '{model.name}' names undefined policy '{name}'"
                f"{_did_you_mean(name, known)}"
            )
            yield Diagnostic("error", message, RULE_UNDEFINED_POLICY, span)


SEMANTIC_RULES: tuple[SemanticRule, ...] = (
    check_undefined_bases,
    check_undefined_link_targets,
    check_duplicate_models,
    check_duplicate_fields,
    check_reverse_name_collisions,
    check_unknown_options,
    check_option_value_kinds,
    check_undefined_policy_references,
)
