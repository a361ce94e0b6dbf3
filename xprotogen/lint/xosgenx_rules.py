"""The field rules of the xosgenx 4.0.4 validator, with its messages and severities.

The rules read option values as xosgenx's IR holds them: the source text, quotes
included (`"date"`, not `date`), so `content_type = date` and `max_length = "10"`
are findings exactly as they are there. Deviations from xosgenx, on purpose:

* Lines point at the field itself; xosgenx reports one line too low, and for a link
  the span of its whole message.
* A `null` that contradicts the modifier of a many-to-many link is reported, as
  xosgenx does, but under its own rule id: xosgenx means to exempt such links and
  never does (its check reads a key that field dicts lack), so this finding is a
  known false positive that users may want to filter out.
* xosgenx validates only the last of two models with the same name; we validate both.
* The dead "Required option ... is not present" check is not reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from ..diagnostics import Diagnostic, Severity
from ..schema import Field, Model

PREFIX = "xosgenx-"

COMMON_OPTIONS = (
    "help_text",
    "gui_hidden",
    "tosca_key",
    "tosca_key_one_of",
    "bookkeeping_state",
    "feedback_state",
    "unique",
    "unique_with",
)
BOOLEAN_OPTIONS = frozenset(
    {
        "blank",
        "db_index",
        "bookkeeping_state",
        "feedback_state",
        "gui_hidden",
        "null",
        "tosca_key",
        "unique",
        "text",
    }
)
# An entry `key=value` allows that key with exactly that value.
ALLOWED_OPTIONS: dict[str, tuple[str, ...]] = {
    "string": (
        "blank",
        "choices",
        "content_type",
        "db_index",
        "default",
        "max_length",
        "modifier",
        "null",
        "text",
    ),
    "date": (
        "auto_now_add",
        "blank",
        "db_index",
        "default",
        "max_length",
        "modifier",
        "null",
        "content_type",
    ),
    "integer": ("blank", "db_index", "default", "max_value", "min_value", "modifier", "null"),
    "float": ("blank", "db_index", "default", "modifier", "null"),
    "bool": ("db_index", "default=True", "default=False", "modifier", "null=False"),
    "manytoone": (
        "blank",
        "db_index",
        "default",
        "model",
        "link_type=manytoone",
        "modifier",
        "null",
        "port",
        "type=link",
    ),
    "manytomany": (
        "blank",
        "db_index",
        "default",
        "model",
        "link_type=manytomany",
        "modifier",
        "null",
        "port",
        "type=link",
    ),
}
PLAIN_STRING_CONTENT_TYPES = ('"stripped"', '"ip"', '"url"')
DATE_CONTENT_TYPE = '"date"'
SUGGESTED_MAX_LENGTHS = (256, 1024)

RULE_OPTION_NOT_ALLOWED = PREFIX + "option-not-allowed"
RULE_OPTION_NOT_BOOLEAN = PREFIX + "option-not-boolean"
RULE_MODIFIER_INCONSISTENT = PREFIX + "modifier-inconsistent"
RULE_M2M_NULL_MODIFIER = PREFIX + "m2m-null-modifier"
RULE_UNKNOWN_MODIFIER = PREFIX + "unknown-modifier"
RULE_CONTENT_TYPE = PREFIX + "content-type-not-allowed"
RULE_STRING_WITHOUT_LENGTH = PREFIX + "string-without-max-length"
RULE_MAX_LENGTH_ZERO = PREFIX + "max-length-zero"
RULE_MAX_LENGTH_NEAR_SUGGESTED = PREFIX + "max-length-near-suggested"
RULE_MAX_LENGTH_NOT_NUMBER = PREFIX + "max-length-not-number"
RULE_UNKNOWN_LINK_TYPE = PREFIX + "unknown-link-type"
RULE_BLANK_WITHOUT_NULL = PREFIX + "blank-without-null"
RULE_UNKNOWN_FIELD_TYPE = PREFIX + "unknown-field-type"


@dataclass(frozen=True, slots=True)
class _Finding:
    severity: Severity
    message: str
    rule: str


@dataclass(frozen=True, slots=True)
class FieldView:
    """A field as the xosgenx validator sees it: raw option texts, synthetic link options added."""

    type: str
    modifier: str
    options: dict[str, str]  # in the order the validator's option loop visits them
    is_many_link: bool

    def option(self, key: str) -> str | None:
        return self.options.get(key)

    def is_true(self, key: str) -> bool:
        return self.options.get(key) == "True"


def field_view(field: Field) -> FieldView:
    """Build the validator's view of `field`."""
    # xosgenx builds the dict so that its loop visits options last-declared first.
    options = {
        key: raw
        for key in reversed(list(field.options))
        if (raw := field.options.raw(key)) is not None
    }
    if field.link is not None:
        options["type"] = "link"
        options["model"] = field.link.peer_ref.text
        if field.link.reverse_name is not None:
            options["port"] = field.link.reverse_name
        options["link_type"] = field.link.link_type
    options["modifier"] = field.modifier
    return FieldView(
        field.type, field.modifier, options, field.link is not None and field.link.is_many
    )


def validate_model(model: Model) -> list[Diagnostic]:
    """Every xosgenx finding for the fields `model` declares itself, in the validator's order."""
    return [
        Diagnostic(finding.severity, finding.message, finding.rule, field.span)
        for field in model.own_fields
        for finding in validate_field(field_view(field))
    ]


def validate_field(field: FieldView) -> Iterator[_Finding]:
    """Dispatch on the field type as xosgenx does."""
    validator = _VALIDATORS.get(field.type)
    if validator is None:
        yield _error(f"Unknown field type {field.type}", RULE_UNKNOWN_FIELD_TYPE)
        return
    yield from validator(field)


def _validate_string(field: FieldView) -> Iterator[_Finding]:
    if field.option("content_type") == DATE_CONTENT_TYPE:
        yield from check_modifier(field)
        yield from check_options(field, ALLOWED_OPTIONS["date"])
        return
    yield from check_content_type(field)
    yield from check_modifier(field)
    yield from check_options(field, ALLOWED_OPTIONS["string"])
    yield from check_string_has_length(field)
    yield from check_max_length_value(field)


def _validate_integer(field: FieldView) -> Iterator[_Finding]:
    # A link is an integer field (its id) that carries `type=link`.
    if field.option("type") == "link":
        yield from _validate_link(field)
        return
    yield from check_modifier(field)
    yield from check_options(field, ALLOWED_OPTIONS["integer"])
    yield from check_blank_implies_null(field)


def _validate_link(field: FieldView) -> Iterator[_Finding]:
    link_type = field.option("link_type")
    if link_type not in ("manytoone", "manytomany"):
        yield _error(f"Unknown link_type {link_type}", RULE_UNKNOWN_LINK_TYPE)
        return
    yield from check_modifier(field)
    yield from check_options(field, ALLOWED_OPTIONS[link_type])


def _validate_float(field: FieldView) -> Iterator[_Finding]:
    yield from check_modifier(field)
    yield from check_options(field, ALLOWED_OPTIONS["float"])


def _validate_bool(field: FieldView) -> Iterator[_Finding]:
    yield from check_modifier(field)
    yield from check_options(field, ALLOWED_OPTIONS["bool"])


_VALIDATORS: dict[str, Callable[[FieldView], Iterator[_Finding]]] = {
    "string": _validate_string,
    "int32": _validate_integer,
    "uint32": _validate_integer,
    "float": _validate_float,
    "bool": _validate_bool,
}


# --- one function per rule -------------------------------------------------------------


def check_content_type(field: FieldView) -> Iterator[_Finding]:
    """Message 5: a plain string's content_type must be stripped, ip or url (date is routed earlier)."""
    content_type = field.option("content_type")
    if content_type and content_type not in PLAIN_STRING_CONTENT_TYPES:
        yield _error(f"Content type {content_type} is not allowed", RULE_CONTENT_TYPE)


def check_modifier(field: FieldView) -> Iterator[_Finding]:
    """Messages 3 and 4: explicit blank and null must agree with required/optional."""
    expected: dict[str, str]
    if field.modifier == "required":
        expected = {"blank": "False", "null": "False"}
    elif field.modifier == "optional":
        expected = {"blank": "True"} if field.type == "bool" else {"blank": "True", "null": "True"}
    else:
        yield _error(f"Unknown modifier type '{field.modifier}'", RULE_UNKNOWN_MODIFIER)
        return
    for key, wanted in expected.items():
        written = field.option(key)
        if written is not None and written != wanted:
            rule = (
                RULE_M2M_NULL_MODIFIER
                if key == "null" and field.is_many_link
                else RULE_MODIFIER_INCONSISTENT
            )
            yield _error(
                f"Option `{key}`=`{written}` is inconsistent with modifier `{field.modifier}`", rule
            )


def check_options(field: FieldView, allowed: tuple[str, ...]) -> Iterator[_Finding]:
    """Messages 1 and 2: each option must be allowed for the type; boolean ones must be True/False."""
    allowed_keys = {entry for entry in allowed if "=" not in entry} | set(COMMON_OPTIONS)
    allowed_pairs = {entry for entry in allowed if "=" in entry}
    for key, value in field.options.items():
        if key not in allowed_keys and f"{key}={value}" not in allowed_pairs:
            yield _error(f"Option {key}={value} is not allowed", RULE_OPTION_NOT_ALLOWED)
        if key in BOOLEAN_OPTIONS and value not in ("True", "False"):
            yield _error(
                f"Option `{key}` must be either True or False, but is '{value}'",
                RULE_OPTION_NOT_BOOLEAN,
            )


def check_string_has_length(field: FieldView) -> Iterator[_Finding]:
    """Message 6: a string needs max_length, text=True or any content_type."""
    if (
        not field.option("max_length")
        and field.option("content_type") is None
        and not field.is_true("text")
    ):
        yield _error(
            "String field should have a max_length or text=True", RULE_STRING_WITHOUT_LENGTH
        )


def check_max_length_value(field: FieldView) -> Iterator[_Finding]:
    """Messages 7 to 10: max_length must be a non-zero integer, and not just off a suggested size."""
    written = field.option("max_length")
    if written is None:
        return
    try:
        length = int(written)
    except ValueError:
        yield _error("max_length must be a number", RULE_MAX_LENGTH_NOT_NUMBER)
        return
    if length == 0:
        yield _error("max_length should not be zero", RULE_MAX_LENGTH_ZERO)
    for suggested in SUGGESTED_MAX_LENGTHS:
        if 0 < abs(suggested - length) < 3:
            yield _Finding(
                "warning",
                f"max_length of {length} is close to suggested max_length of {suggested}",
                RULE_MAX_LENGTH_NEAR_SUGGESTED,
            )


def check_blank_implies_null(field: FieldView) -> Iterator[_Finding]:
    """Message 12: an integer that may be blank must also be nullable."""
    if field.is_true("blank") and not field.is_true("null"):
        yield _error("If blank is true then null must also be true", RULE_BLANK_WITHOUT_NULL)


def _error(message: str, rule: str) -> _Finding:
    return _Finding("error", message, rule)
