"""The typed syntax tree of an xproto file.

Every node is a frozen dataclass that carries the `Span` it came from. Spans are
excluded from equality so that two trees parsed from differently laid-out text
compare equal when they say the same thing.

Import time is most of a CLI run, and `dataclasses` compiles each generated method
separately. So the nodes are declared with `@node`, which type checkers treat as a frozen
dataclass (PEP 681) and which builds the same methods for all classes in one compilation.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, TypeVar, Union, dataclass_transform

_T = TypeVar("_T")


class FrozenInstanceError(AttributeError):
    """Raised on an attempt to change a node: the tree is immutable."""


class _FieldSpec:
    __slots__ = ("default", "compare")

    def __init__(self, default: Any, compare: bool) -> None:
        self.default = default
        self.compare = compare


def field(*, default: Any, compare: bool = True, repr: bool = True) -> Any:  # noqa: A002
    """A field with a default; `compare=False` leaves it out of ==, hash and repr."""
    return _FieldSpec(default, compare and repr)


_PENDING: list[type] = []


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def node(cls: type[_T]) -> type[_T]:
    """Declare a frozen node class; its methods are made by `_build_nodes` below."""
    _PENDING.append(cls)
    return cls


def _frozen(self: object, name: str, value: object = None) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r} of an immutable node")


def _build_nodes() -> None:
    """Write __init__, __eq__, __hash__ and __repr__ of every pending class in one go."""
    namespace: dict[str, Any] = {"_set": object.__setattr__}
    lines: list[str] = []
    plans: list[tuple[type, list[str], list[str]]] = []
    for index, cls in enumerate(_PENDING):
        names = list(cls.__dict__.get("__annotations__", {}))
        params, compared = [], []
        for name in names:
            declared = cls.__dict__.get(name, _PENDING)
            spec = declared if isinstance(declared, _FieldSpec) else None
            default = spec.default if spec else declared
            if default is _PENDING:
                params.append(name)
            else:
                namespace[f"_d{index}_{name}"] = default
                params.append(f"{name}=_d{index}_{name}")
                if hasattr(cls, name):
                    delattr(cls, name)
            if spec is None or spec.compare:
                compared.append(name)
        own = ", ".join(f"self.{n}" for n in compared) + ("," if len(compared) == 1 else "")
        other = ", ".join(f"other.{n}" for n in compared) + ("," if len(compared) == 1 else "")
        shown = ", ".join(f"{n}={{self.{n}!r}}" for n in compared)
        lines += [
            f"def _init{index}(self, {', '.join(params)}):",
            *(f"    _set(self, {n!r}, {n})" for n in names),
            f"def _eq{index}(self, other):",
            "    if other.__class__ is not self.__class__:",
            "        return NotImplemented",
            f"    return ({own}) == ({other})",
            f"def _hash{index}(self):",
            f"    return hash(({own}))",
            f"def _repr{index}(self):",
            f"    return f'{cls.__name__}({shown})'",
        ]
        plans.append((cls, names, compared))
    exec(compile("\n".join(lines), __file__ + ":nodes", "exec"), namespace)  # noqa: S102
    for index, (cls, _, _) in enumerate(plans):
        for method in ("init", "eq", "hash", "repr"):
            setattr(cls, f"__{method}__", namespace[f"_{method}{index}"])
        setattr(cls, "__setattr__", _frozen)
        setattr(cls, "__delattr__", _frozen)
    _PENDING.clear()


@node
class Span:
    """Where a node starts in its source file (1-based line and column)."""

    file: str
    line: int
    column: int
    end_line: int = 0
    # Just past the last character; kept out of == so spans made without it still match.
    end_column: int = field(default=0, compare=False)

    @property
    def start(self) -> tuple[int, int]:
        return (self.line, self.column)

    @property
    def end(self) -> tuple[int, int]:
        return (self.end_line, self.end_column)

    def __str__(self) -> str:
        # Line 0 means "the whole file" (it cannot be read, it is empty, ...).
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


_build_nodes()  # Span first: NOWHERE below is the default span of every other node.
NOWHERE = Span("<generated>", 0, 0)


def _span() -> Any:
    return field(default=NOWHERE, compare=False, repr=False)


# --- comments ------------------------------------------------------------------------------


@node
class Comment:
    """A `// ...` comment (trailing blanks dropped) or a `/* ... */` comment, as written."""

    text: str
    span: Span = _span()

    @property
    def is_line(self) -> bool:
        return self.text.startswith("//")

    @property
    def body(self) -> str:
        """The words of the comment: without its markers and the `*` gutter of block comments."""
        if self.is_line:
            return self.text[2:].strip()
        lines = self.text[2:-2].splitlines()
        return "\n".join(line.strip().lstrip("*").strip() for line in lines).strip()


@node
class Comments:
    """The comments a node owns: above it, after it on its last line, and (for a block)
    those before its closing brace that follow no member."""

    leading: tuple[Comment, ...] = ()
    trailing: tuple[Comment, ...] = ()
    closing: tuple[Comment, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.leading or self.trailing or self.closing)


_build_nodes()  # Comments next: NO_COMMENTS is the default of every node that can have them.
NO_COMMENTS = Comments()


def _comments() -> Any:
    return field(default=NO_COMMENTS)


def doc_comment(comments: Comments, span: Span) -> str | None:
    """The text of the comments right above a node (no blank line between), or None.

    This is what generated code uses as the node's documentation.
    """
    block: list[Comment] = []
    line = span.line
    for comment in reversed(comments.leading):
        if line > 0 and comment.span.end_line != line - 1:
            break  # a blank line: what is above it is not about this node
        block.insert(0, comment)
        line = comment.span.line
    text = " ".join(c.body for c in block if c.body)
    return " ".join(text.split()) or None


ValueKind = Literal["string", "number", "bool", "name"]


@node
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


@node
class Option:
    """`name = value`: a file or message option, or a field directive."""

    name: str
    value: Value
    span: Span = _span()
    comments: Comments = _comments()


@node
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


@node
class ScalarField:
    modifier: str
    type: str
    name: str
    number: str
    options: tuple[Option, ...] = ()
    policy: str | None = None
    span: Span = _span()
    comments: Comments = _comments()


LinkType = Literal["manytoone", "manytomany", "onetoone"]


@node
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
    comments: Comments = _comments()


@node
class EnumValue:
    name: str
    number: str
    span: Span = _span()
    comments: Comments = _comments()


@node
class Enum:
    name: str
    values: tuple[EnumValue, ...] = ()
    options: tuple[Option, ...] = ()
    span: Span = _span()
    comments: Comments = _comments()


@node
class Extensions:
    start: str
    end: str
    span: Span = _span()
    comments: Comments = _comments()


@node
class Extend:
    name: str
    body: tuple[MessageItem, ...] = ()
    span: Span = _span()
    comments: Comments = _comments()


@node
class Message:
    """A model. `bases` is None without parentheses, `()` for an empty list."""

    name: str
    bases: tuple[DottedName, ...] | None = None
    policy: str | None = None
    body: tuple[MessageItem, ...] = ()
    span: Span = _span()
    comments: Comments = _comments()

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


@node
class Term:
    """A constant, a dotted symbol, `True`/`False`, a number or a quoted string."""

    text: str
    span: Span = _span()


@node
class PythonEscape:
    """`{{ expression }}`: Python evaluated as is."""

    code: str
    span: Span = _span()


@node
class PolicyCall:
    """`*policy(field)`: apply another policy to the object a field points at."""

    policy: str
    field: str
    span: Span = _span()


@node
class Not:
    operand: Formula
    span: Span = _span()


@node
class Compare:
    op: Literal["=", "in"]
    left: Operand
    right: Operand
    span: Span = _span()


@node
class Connective:
    op: Literal["&", "|", "->"]
    left: Formula
    right: Formula
    span: Span = _span()


@node
class Quantifier:
    kind: Literal["forall", "exists"]
    variable: str
    body: Formula
    span: Span = _span()


Operand = Union[Term, PythonEscape, PolicyCall]
Formula = Union[Operand, Not, Compare, Connective, Quantifier]


@node
class PolicyDef:
    name: str
    formula: Formula
    span: Span = _span()
    comments: Comments = _comments()
    # The body between `<` and `>` as written, so a formatter can keep the author's layout.
    source: str = field(default="", compare=False)


@node
class LambdaDef:
    """`map NAME <lambda ...>` or `reduce NAME <lambda ...>`; kept as source text."""

    kind: Literal["map", "reduce"]
    name: str
    code: str
    span: Span = _span()
    comments: Comments = _comments()


# --- file level ---------------------------------------------------------------------------


@node
class Rpc:
    name: str
    request: str
    response: str
    span: Span = _span()
    comments: Comments = _comments()


@node
class Service:
    name: str
    rpcs: tuple[Rpc, ...] = ()
    span: Span = _span()
    comments: Comments = _comments()


@node
class Package:
    name: str
    span: Span = _span()
    comments: Comments = _comments()


@node
class Import:
    path: str
    span: Span = _span()
    comments: Comments = _comments()


TopLevel = Union[Message, Extend, Enum, PolicyDef, LambdaDef, Service, Import, Package, Option]


@node
class File:
    path: str
    items: tuple[TopLevel, ...] = ()
    span: Span = _span()
    comments: Comments = _comments()

    @property
    def messages(self) -> tuple[Message, ...]:
        return tuple(item for item in self.items if isinstance(item, Message))


_build_nodes()
