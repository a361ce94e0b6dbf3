"""Text to AST: the xproto grammar, the policy sub-grammar, and friendly syntax errors."""

from __future__ import annotations

import ast as pyast
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .diagnostics import Diagnostic, XprotoError

GRAMMAR_DIR = Path(__file__).parent / "grammar"

# Words the xproto lexer reserves; using one as a name is a syntax error there too.
RESERVED_WORDS = frozenset(
    "double float int32 int64 uint32 uint64 sint32 sint64 fixed32 fixed64 sfixed32 sfixed64 "
    "bool string bytes message required optional repeated enum extensions max extend to "
    "package _service rpc returns true false option import manytoone manytomany onetoone "
    "policy map reduce".split()
)


@lru_cache(maxsize=None)
def _lark(grammar: str, strict: bool = False) -> Lark:
    return Lark(
        (GRAMMAR_DIR / grammar).read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
        strict=strict,
    )


def parse_file(path: str | Path) -> ast.File:
    """Read and parse one xproto file; any problem is raised as an `XprotoError`."""
    return parse_text(read_source(path), str(path))


def read_source(path: str | Path) -> str:
    """The file's text, or an `XprotoError` naming why it cannot be read."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise _file_error(name, "no such file") from None
    except IsADirectoryError:
        raise _file_error(name, "is a directory, not an xproto file") from None
    except OSError as exc:
        raise _file_error(name, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise XprotoError(
            [
                Diagnostic(
                    "error",
                    f"not valid UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded",
                    "encoding",
                    ast.Span(name, line, column),
                )
            ]
        ) from None
    if not text.strip():
        raise _file_error(name, "file is empty")
    return text


def _file_error(name: str, message: str) -> XprotoError:
    return XprotoError([Diagnostic("error", message, "input", ast.Span(name, 0, 0))])


def parse_text(text: str, path: str = "<string>") -> ast.File:
    """Parse xproto source text; syntax errors are raised as an `XprotoError`."""
    lark = _lark("xproto.lark")
    try:
        tree = lark.parse(text)
    except UnexpectedInput as exc:
        raise XprotoError([_syntax_diagnostic(exc, lark, text, path, 1, 1)]) from None
    builder = _AstBuilder(path)
    result: ast.File = builder.transform(tree)
    if builder.problems:
        raise XprotoError(builder.problems)
    return result


def parse_policy(body: str, span: ast.Span) -> ast.Formula:
    """Parse a policy body (the text inside `<` `>`) starting at `span`."""
    lark = _lark("policy.lark")
    try:
        tree = lark.parse(body)
    except UnexpectedInput as exc:
        raise XprotoError([_syntax_diagnostic(exc, lark, body, span.file, span.line, span.column)]) from None
    formula: ast.Formula = _PolicyBuilder(span).transform(tree)
    return formula


# --- syntax errors -----------------------------------------------------------------------


def _syntax_diagnostic(
    exc: UnexpectedInput, lark: Lark, text: str, path: str, line0: int, column0: int
) -> Diagnostic:
    line = exc.line if exc.line and exc.line > 0 else text.count("\n") + 1
    column = exc.column if exc.column and exc.column > 0 else 1
    # Positions inside a sub-language body are relative to the body's first character.
    span = ast.Span(path, line0 + line - 1, column + column0 - 1 if line == 1 else column)
    if isinstance(exc, UnexpectedCharacters):
        return Diagnostic("error", _bad_character_message(text[exc.pos_in_stream]), "syntax", span)
    expected = _describe_expected(lark, getattr(exc, "expected", None) or getattr(exc, "accepts", ()))
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        return Diagnostic("error", f"unexpected end of file; expected {expected}", "syntax", span)
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    found = str(token)
    if found in RESERVED_WORDS and "NAME" in exc.expected:
        message = f"'{found}' is a reserved word and cannot be used as a name here"
    elif token.type == "POLICYBODY":
        message = "unexpected '<': in xproto '<' only opens a policy body"
        span = ast.Span(path, span.line, span.column)
    else:
        message = f"unexpected {_describe_token(found)}; expected {expected}"
    return Diagnostic("error", message, "syntax", span)


def _bad_character_message(char: str) -> str:
    if char == "'":
        return "single quotes do not delimit strings in xproto; use double quotes"
    if char == "#":
        return "'#' does not start a comment in xproto; use // or /* */"
    if ord(char) > 127:
        return (
            f"non-ASCII character '{char}' (U+{ord(char):04X}) outside a string; "
            "names may only use ASCII letters, digits, '_', '$' and '+'"
        )
    if char == "<":
        return "a policy body '<...>' needs at least one character and a closing '>'"
    return f"unexpected character {char!r}"


def _describe_token(text: str) -> str:
    if len(text) > 40:
        text = text[:37] + "..."
    return f"'{text}'"


_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUM": "a number",
    "STRING": "a string",
    "POLICYBODY": "a policy body '<...>'",
    "SYMBOL": "a name",
    "ESCAPE": "a Python escape '{{...}}'",
}


def _describe_expected(lark: Lark, names: Iterable[str]) -> str:
    words: set[str] = set()
    for name in names:
        if name in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[name])
            continue
        try:
            pattern = lark.get_terminal(name).pattern
        except KeyError:
            continue
        if pattern.type == "str":
            words.add(f"'{pattern.value}'")
    ordered = sorted(words, key=lambda w: (not w.startswith("'"), w))
    if not ordered:
        return "something else"
    if len(ordered) == 1:
        return ordered[0]
    return "one of " + ", ".join(ordered)


# --- tree to AST -------------------------------------------------------------------------


def _span_of(path: str, item: Any) -> ast.Span:
    line = getattr(item, "line", None)
    column = getattr(item, "column", None)
    end_line = getattr(item, "end_line", None)
    return ast.Span(path, line or 0, column or 0, end_line or line or 0)


class _Named(str):
    """A string produced by a small rule whose role is known from its class."""


class _PolicyRef(_Named):
    pass


class _Through(ast.DottedName):
    pass


class _Reverse(_Named):
    pass


class _ReverseId(_Named):
    pass


class _Bases(tuple):  # type: ignore[type-arg]
    pass


def _with_meta(method: Callable[..., Any]) -> Any:
    return v_args(meta=True)(method)


class _AstBuilder(Transformer):  # type: ignore[type-arg]
    """Builds typed AST nodes; collects sub-language errors instead of stopping at one."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.problems: list[Diagnostic] = []

    def _span(self, meta: Any) -> ast.Span:
        return _span_of(self.path, meta)

    @_with_meta
    def start(self, meta: Any, items: list[Any]) -> ast.File:
        return ast.File(self.path, tuple(items), self._span(meta))

    @_with_meta
    def import_stmt(self, meta: Any, children: list[Token]) -> ast.Import:
        return ast.Import(ast.Value("string", str(children[0])).unquoted, self._span(meta))

    @_with_meta
    def package_stmt(self, meta: Any, children: list[ast.DottedName]) -> ast.Package:
        return ast.Package(children[0].text, self._span(meta))

    @_with_meta
    def option_stmt(self, meta: Any, children: list[Any]) -> ast.Option:
        return ast.Option(str(children[0]), children[1], self._span(meta))

    @_with_meta
    def directive(self, meta: Any, children: list[Any]) -> ast.Option:
        return ast.Option(str(children[0]), children[1], self._span(meta))

    def directives(self, children: list[ast.Option]) -> tuple[ast.Option, ...]:
        return tuple(children)

    def _value(kind: ast.ValueKind) -> Any:  # type: ignore[misc]  # noqa: N805
        def build(self: _AstBuilder, meta: Any, children: list[Token]) -> ast.Value:
            token = children[0] if children else None
            text = str(token) if token is not None else kind
            return ast.Value(kind, text, self._span(meta))

        return _with_meta(build)

    number = _value("number")
    string = _value("string")
    name = _value("name")

    @_with_meta
    def true(self, meta: Any, children: list[Token]) -> ast.Value:
        return ast.Value("bool", "true", self._span(meta))

    @_with_meta
    def false(self, meta: Any, children: list[Token]) -> ast.Value:
        return ast.Value("bool", "false", self._span(meta))

    @_with_meta
    def dotname(self, meta: Any, children: list[Token]) -> ast.DottedName:
        return ast.DottedName(".".join(str(c) for c in children), self._span(meta))

    def policy_ref(self, children: list[Token]) -> _PolicyRef:
        return _PolicyRef(children[0])

    def bases(self, children: list[ast.DottedName]) -> _Bases:
        return _Bases(children)

    def _text(self, children: list[Token]) -> str:
        return str(children[0])

    field_name = _text
    modifier = _text
    link_type = _text
    scalar_type = _text
    lambda_kind = _text
    extension_end = _text

    def field_type(self, children: list[Any]) -> str:
        child = children[0]
        return child.text if isinstance(child, ast.DottedName) else str(child)

    def through(self, children: list[ast.DottedName]) -> _Through:
        return _Through(children[0].text, children[0].span)

    def reverse(self, children: list[str]) -> _Reverse:
        return _Reverse(children[0])

    def reverse_id(self, children: list[Token]) -> _ReverseId:
        return _ReverseId(children[0])

    @_with_meta
    def message(self, meta: Any, children: list[Any]) -> ast.Message:
        name, policy, bases, *body = children
        return ast.Message(
            str(name),
            tuple(bases) if bases is not None else None,
            str(policy) if policy is not None else None,
            tuple(body),
            self._span(meta),
        )

    @_with_meta
    def scalar_field(self, meta: Any, children: list[Any]) -> ast.ScalarField:
        modifier, type_, name, policy, number, options = children
        return ast.ScalarField(
            modifier,
            type_,
            name,
            str(number),
            options or (),
            str(policy) if policy is not None else None,
            self._span(meta),
        )

    @_with_meta
    def link_field(self, meta: Any, children: list[Any]) -> ast.LinkField:
        modifier, link_type, name, policy, peer, through, reverse, number, rid, options = children
        return ast.LinkField(
            modifier=modifier,
            link_type=link_type,
            name=name,
            peer=peer,
            number=str(number),
            through=ast.DottedName(through.text, through.span) if through is not None else None,
            reverse_name=str(reverse) if reverse is not None else None,
            reverse_id=str(rid) if rid is not None else None,
            options=options or (),
            policy=str(policy) if policy is not None else None,
            span=self._span(meta),
        )

    @_with_meta
    def extensions(self, meta: Any, children: list[Any]) -> ast.Extensions:
        return ast.Extensions(str(children[0]), str(children[1]), self._span(meta))

    @_with_meta
    def extend(self, meta: Any, children: list[Any]) -> ast.Extend:
        return ast.Extend(str(children[0]), tuple(children[1:]), self._span(meta))

    @_with_meta
    def enum(self, meta: Any, children: list[Any]) -> ast.Enum:
        values = tuple(c for c in children[1:] if isinstance(c, ast.EnumValue))
        options = tuple(c for c in children[1:] if isinstance(c, ast.Option))
        return ast.Enum(str(children[0]), values, options, self._span(meta))

    @_with_meta
    def enum_value(self, meta: Any, children: list[Any]) -> ast.EnumValue:
        return ast.EnumValue(str(children[0]), str(children[1]), self._span(meta))

    @_with_meta
    def service(self, meta: Any, children: list[Any]) -> ast.Service:
        return ast.Service(str(children[0]), tuple(children[1:]), self._span(meta))

    @_with_meta
    def rpc(self, meta: Any, children: list[Token]) -> ast.Rpc:
        name, request, response = (str(c) for c in children)
        return ast.Rpc(name, request, response, self._span(meta))

    @_with_meta
    def policy_def(self, meta: Any, children: list[Token]) -> ast.PolicyDef | None:
        name, body = children
        span = self._span(meta)
        body_span = ast.Span(self.path, body.line or 0, (body.column or 0) + 1)
        try:
            formula = parse_policy(str(body)[1:-1], body_span)
        except XprotoError as exc:
            self.problems.extend(
                Diagnostic(d.severity, f"in policy '{name}': {d.message}", d.rule, d.span)
                for d in exc.diagnostics
            )
            formula = ast.Term("False")
        return ast.PolicyDef(str(name), formula, span)

    @_with_meta
    def lambda_def(self, meta: Any, children: list[Any]) -> ast.LambdaDef:
        kind, name, body = children
        code = str(body)[1:-1].strip()
        span = self._span(meta)
        if not _is_lambda(code):
            self.problems.append(
                Diagnostic(
                    "error",
                    f"the body of {kind} '{name}' must be a Python lambda expression, e.g. <lambda x: x>",
                    "syntax",
                    ast.Span(self.path, body.line or 0, body.column or 0),
                )
            )
        return ast.LambdaDef(kind, str(name), code, span)


def _is_lambda(code: str) -> bool:
    try:
        tree = pyast.parse(code, mode="eval")
    except SyntaxError:
        return False
    return isinstance(tree.body, pyast.Lambda)


class _PolicyBuilder(Transformer):  # type: ignore[type-arg]
    """Builds policy formulas; spans are shifted to the body's place in the file."""

    def __init__(self, origin: ast.Span) -> None:
        super().__init__()
        self.origin = origin

    def _span(self, item: Any) -> ast.Span:
        line = getattr(item, "line", 1) or 1
        column = getattr(item, "column", 1) or 1
        if line == 1:
            column += self.origin.column - 1
        return ast.Span(self.origin.file, self.origin.line + line - 1, column)

    def constant(self, children: list[Token]) -> ast.Term:
        return ast.Term(str(children[0]), self._span(children[0]))

    symbol = constant

    def true(self, children: list[Token]) -> ast.Term:
        return ast.Term("True", self.origin)

    def false(self, children: list[Token]) -> ast.Term:
        return ast.Term("False", self.origin)

    def escape(self, children: list[Token]) -> ast.PythonEscape:
        code = str(children[0])[2:-2].lstrip("{ ").rstrip(" }")
        return ast.PythonEscape(code, self._span(children[0]))

    def call(self, children: list[Token]) -> ast.PolicyCall:
        return ast.PolicyCall(str(children[0]), str(children[1]), self._span(children[0]))

    def not_(self, children: list[Any]) -> ast.Not:
        return ast.Not(children[0], self.origin)

    def quantifier(self, children: list[Any]) -> ast.Quantifier:
        kind, variable, body = children
        return ast.Quantifier(kind, str(variable), body, self._span(variable))

    def quantifier_kind(self, children: list[Token]) -> str:
        return str(children[0])

    def equals(self, children: list[Any]) -> ast.Compare:
        return ast.Compare("=", children[0], children[1], self.origin)

    def member(self, children: list[Any]) -> ast.Compare:
        return ast.Compare("in", children[0], children[1], self.origin)

    def and_(self, children: list[Any]) -> ast.Connective:
        return ast.Connective("&", children[0], children[1], self.origin)

    def or_(self, children: list[Any]) -> ast.Connective:
        return ast.Connective("|", children[0], children[1], self.origin)

    def implies(self, children: list[Any]) -> ast.Connective:
        return ast.Connective("->", children[0], children[1], self.origin)
