"""The options xproto knows, their types and defaults, and typed access to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

from . import ast

OptionKind = Literal["bool", "int", "str", "any"]
OptionValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class OptionSpec:
    kind: OptionKind
    default: OptionValue = None


FIELD_OPTIONS: dict[str, OptionSpec] = {
    "help_text": OptionSpec("str"),
    "gui_hidden": OptionSpec("bool", False),
    "feedback_state": OptionSpec("bool", False),
    "bookkeeping_state": OptionSpec("bool", False),
    "tosca_key": OptionSpec("bool", False),
    "tosca_key_one_of": OptionSpec("str"),
    "unique": OptionSpec("bool", False),
    "unique_with": OptionSpec("str"),
    "blank": OptionSpec("bool"),
    "null": OptionSpec("bool"),
    "default": OptionSpec("any"),
    "max_length": OptionSpec("int"),
    "text": OptionSpec("bool", False),
    "content_type": OptionSpec("str"),
    "choices": OptionSpec("str"),
    "db_index": OptionSpec("bool", False),
    "auto_now_add": OptionSpec("bool", False),
    "min_value": OptionSpec("int"),
    "max_value": OptionSpec("int"),
    "verbose_name": OptionSpec("str"),
    "editable": OptionSpec("bool", True),
    "on_delete": OptionSpec("str"),
    "singular": OptionSpec("str"),
    "plural": OptionSpec("str"),
    "min": OptionSpec("int"),
    "validators": OptionSpec("str"),
}

MODEL_OPTIONS: dict[str, OptionSpec] = {
    "name": OptionSpec("str"),
    "app_label": OptionSpec("str"),
    "app_name": OptionSpec("str"),
    "verbose_name": OptionSpec("str"),
    "description": OptionSpec("str"),
    "plural": OptionSpec("str"),
    "singular": OptionSpec("str"),
    "custom_python": OptionSpec("bool", False),
    "legacy": OptionSpec("bool", False),
    "kind": OptionSpec("str"),
    "owner_class_name": OptionSpec("str"),
    "validators": OptionSpec("str"),
    "sync_implemented": OptionSpec("bool", False),
    "policy_implemented": OptionSpec("bool", False),
    "gui_hidden": OptionSpec("bool", False),
    "skip_init": OptionSpec("bool", False),
    "skip_django": OptionSpec("bool", False),
    "custom_header": OptionSpec("str"),
    "abstract": OptionSpec("bool", False),
    "no_sync": OptionSpec("bool", False),
    "no_policy": OptionSpec("bool", False),
    "bases": OptionSpec("str"),
    "tosca_description": OptionSpec("str"),
}
# Legacy ceilometer options appear in the corpus; they are stored and never read.
MODEL_OPTION_PREFIXES = ("ceilometer_",)


def typed(value: ast.Value, kind: OptionKind) -> OptionValue:
    """Interpret an option value as its spec says: `True`, `"True"` and `true` are all true."""
    raw = value.python
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        return bool(raw)
    if kind == "int":
        if isinstance(raw, bool):
            return int(raw)
        if isinstance(raw, (int, float)):
            return int(raw)
        if isinstance(raw, str) and raw.lstrip("+-").isdigit():
            return int(raw)
        return raw
    if kind == "str":
        return None if raw is None else str(raw)
    return raw


class Options(Mapping[str, ast.Value]):
    """Options as written (`ast.Value`), with typed reads through `get_typed`."""

    def __init__(self, values: Mapping[str, ast.Value], specs: Mapping[str, OptionSpec]) -> None:
        self._values = dict(values)
        self._specs = specs

    def __getitem__(self, key: str) -> ast.Value:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def value(self, key: str) -> OptionValue:
        """The typed value of `key`, or its default when it is not set."""
        spec = self._specs.get(key, OptionSpec("any"))
        written = self._values.get(key)
        if written is None:
            return spec.default
        return typed(written, spec.kind)

    def flag(self, key: str) -> bool:
        return self.value(key) is True

    def text(self, key: str) -> str | None:
        value = self.value(key)
        return None if value is None else str(value)

    def raw(self, key: str) -> str | None:
        """The value's source text (strings keep their quotes), as xosgenx sees it."""
        written = self._values.get(key)
        return None if written is None else written.text


class NowDefault:
    """The marker of `default = "now()"`: the value is the time of the write."""

    def __repr__(self) -> str:
        return "NOW"


NOW = NowDefault()
DefaultKind = Literal["text", "int", "float", "bool", "date"]
Default = str | int | float | bool | NowDefault | None


def literal_default(written: ast.Value | None, kind: DefaultKind) -> Default:
    """What a field's `default` option gives a new object, as a value of `kind`.

    None when there is no default or it does not fit `kind`. A bare name other than
    True/False/None (`get_first_site`) names a Python function in XOS, which no store can
    call, so it gives None too; `"now()"` gives `NOW` for a date and None otherwise.
    """
    if written is None:
        return None
    raw = written.python
    if raw is None or (written.kind == "name" and not isinstance(raw, bool)):
        return None
    if isinstance(raw, str) and raw.endswith("()"):
        return NOW if kind == "date" and raw == "now()" else None
    if kind == "text":
        return str(raw)
    if kind == "bool":
        return typed(written, "bool") if _is_bool_text(raw) else None
    number = _number(raw)
    if kind == "int":
        return int(number) if isinstance(number, int) else None
    return float(number) if number is not None else None


def _is_bool_text(raw: object) -> bool:
    return isinstance(raw, bool) or (isinstance(raw, str) and raw.lower() in ("true", "false"))


def _number(raw: object) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            try:
                return float(raw)
            except ValueError:
                return None
    return None
