"""The typed syntax tree of an xproto file.

Every node is a frozen dataclass that carries the `Span` it came from. Spans are
excluded from equality so that two trees parsed from differently laid-out text
compare equal when they say the same thing.

The classes are not slotted: `slots=True` makes `dataclass` build every class twice,
which doubled this module's import time, and import time is most of a CLI run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union


@dataclass(frozen=True)
class Span:
    """Where a node starts in its source file (1-based line and column)."""

    file: str
    line: int
    column: int
    end_line: int = 0

    def __str__(self) -> str:
        # Line 0 means "the whole file" (it cannot be read, it is empty, ...).
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Span("<generated>", 0, 0)


def _span() -> Span:
    return field(default=NOWHERE, compare=False, repr=False)


ValueKind = Literal["string", "number", "bool", "name"]


@dataclass(frozen=True)
class Value:
    """An option value as written: its kind and its exact source text.

    Strings keep their quotes in `text`, as xosgenx keeps them; `python` gives
    the typed value.
    """

    kind: ValueKind
    text: str
    span: Span = _span()

    @property
    def unquoted(self) -> str:
        if self.kind == "string":
            return _unescape(self.text[1:-1])
        return self.text

    @property
    def python(self) -> str | int | float | bool | None:
        if self.kind == "string":
            return self.unquoted
        if self.kind == "bool":
            return self.text == "true"
        if self.kind == "number":
            return float(self.text) if "." in self.text else int(self.text)
        if self.text in ("True", "False"):
            return self.text == "True"
        if self.text == "None":
            return None
        return self.text


def _unescape(body: str) -> str:
    out: list[str] = []
    chars = iter(body)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class Option:
    """`name = value`: a file or message option, or a field directive."""

    name: str
    value: Value
    span: Span = _span()


@dataclass(frozen=True)
class DottedName:
    """A possibly package-qualified name such as `xos.core.Instance`."""

    text: str
    span: Span = _span()

    @property
    def name(self) -> str:
        return self.text.rsplit(".", 1)[-1]

    @property
    def package(self) -> str:
        return self.text.rpartition(".")[0]


@dataclass(frozen=True)
class ScalarField:
    modifier: str
    type: str
    name: str
    number: str
    options: tuple[Option, ...] = ()
    policy: str | None = None
    span: Span = _span()


LinkType = Literal["manytoone", "manytomany", "onetoone"]


@dataclass(frozen=True)
class LinkField:
    """`modifier linktype name->Peer[/Through][:reverse] = n[:rid] [options]`."""

    modifier: str
    link_type: LinkType
    name: str
    peer: DottedName
    number: str
    through: DottedName | None = None
    reverse_name: str | None = None
    reverse_id: str | None = None
    options: tuple[Option, ...] = ()
    policy: str | None = None
    span: Span = _span()


@dataclass(frozen=True)
class EnumValue:
    name: str
    number: str
    span: Span = _span()


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[EnumValue, ...] = ()
    options: tuple[Option, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class Extensions:
    start: str
    end: str
    span: Span = _span()


@dataclass(frozen=True)
class Extend:
    name: str
    body: tuple[MessageItem, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class Message:
    """A model. `bases` is None without parentheses, `()` for an empty list."""

    name: str
    bases: tuple[DottedName, ...] | None = None
    policy: str | None = None
    body: tuple[MessageItem, ...] = ()
    span: Span = _span()

    @property
    def options(self) -> tuple[Option, ...]:
        return tuple(item for item in self.body if isinstance(item, Option))

    @property
    def fields(self) -> tuple[ScalarField | LinkField, ...]:
        return tuple(item for item in self.body if isinstance(item, (ScalarField, LinkField)))

    @property
    def nested_messages(self) -> tuple[Message, ...]:
        return tuple(item for item in self.body if isinstance(item, Message))


MessageItem = Union[ScalarField, LinkField, Enum, Option, Message, Extensions, Extend]


# --- the policy (first-order logic) sub-language ---------------------------------------


@dataclass(frozen=True)
class Term:
    """A constant, a dotted symbol, `True`/`False`, a number or a quoted string."""

    text: str
    span: Span = _span()


@dataclass(frozen=True)
class PythonEscape:
    """`{{ expression }}`: Python evaluated as is."""

    code: str
    span: Span = _span()


@dataclass(frozen=True)
class PolicyCall:
    """`*policy(field)`: apply another policy to the object a field points at."""

    policy: str
    field: str
    span: Span = _span()


@dataclass(frozen=True)
class Not:
    operand: Formula
    span: Span = _span()


@dataclass(frozen=True)
class Compare:
    op: Literal["=", "in"]
    left: Operand
    right: Operand
    span: Span = _span()


@dataclass(frozen=True)
class Connective:
    op: Literal["&", "|", "->"]
    left: Formula
    right: Formula
    span: Span = _span()


@dataclass(frozen=True)
class Quantifier:
    kind: Literal["forall", "exists"]
    variable: str
    body: Formula
    span: Span = _span()


Operand = Union[Term, PythonEscape, PolicyCall]
Formula = Union[Operand, Not, Compare, Connective, Quantifier]


@dataclass(frozen=True)
class PolicyDef:
    name: str
    formula: Formula
    span: Span = _span()


@dataclass(frozen=True)
class LambdaDef:
    """`map NAME <lambda ...>` or `reduce NAME <lambda ...>`; kept as source text."""

    kind: Literal["map", "reduce"]
    name: str
    code: str
    span: Span = _span()


# --- file level ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rpc:
    name: str
    request: str
    response: str
    span: Span = _span()


@dataclass(frozen=True)
class Service:
    name: str
    rpcs: tuple[Rpc, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class Package:
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Import:
    path: str
    span: Span = _span()


TopLevel = Union[Message, Extend, Enum, PolicyDef, LambdaDef, Service, Import, Package, Option]


@dataclass(frozen=True)
class File:
    path: str
    items: tuple[TopLevel, ...] = ()
    span: Span = _span()

    @property
    def messages(self) -> tuple[Message, ...]:
        return tuple(item for item in self.items if isinstance(item, Message))
