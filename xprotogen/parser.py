"""Text to AST: the xproto grammar, the policy sub-grammar, and friendly syntax errors.

Both grammars are Lark LALR(1) grammars (`grammar/*.lark`), but Lark is not imported to parse:
`lalr` saves what Lark's analysis produced in a small cache file and runs it with its own lexer
and parse loop (Lark is needed only when that file is missing or stale). Speed comes from
these choices (figures in docs/performance.md):

* `lalr.Lexer` lexes with one compiled regex built from Lark's own terminal definitions and
  turns names into keywords by dict lookup, instead of Lark's per-terminal scanning.
* AST nodes are built while parsing, so no parse tree is made. Callbacks see only their
  children, so rules that need a span keep all their tokens (`!rule` in the grammar) and the
  span is taken from their first and last token.
* `lalr.Driver` runs the LALR table and callbacks in one tight loop.
* No Lark import and no Lark deserialisation at run time (about 40 ms of a short run).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import ast
from .comments import attach_comments
from .diagnostics import Diagnostic, XprotoError
from .lalr import (
    Driver,
    SyntaxProblem,
    Tables,
    Token,
    UnexpectedCharacters,
    UnexpectedToken,
    load_tables,
)

GRAMMAR_DIR = Path(__file__).parent / "grammar"

# Words the xproto lexer reserves; using one as a name is a syntax error there too.
RESERVED_WORDS = frozenset(
    "double float int32 int64 uint32 uint64 sint32 sint64 fixed32 fixed64 sfixed32 sfixed64 "
    "bool string bytes message required optional repeated enum extensions max extend to "
    "package _service rpc returns true false option import manytoone manytomany onetoone "
    "policy map reduce".split()
)


# --- public entry points -------------------------------------------------------------------


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
    builder = _xproto_builder()
    comments: list[tuple[int, int]] = []
    with builder.parsing(path) as problems:
        try:
            result: ast.File = builder.driver.parse(text, comments)
        except SyntaxProblem as exc:
            raise XprotoError([_syntax_diagnostic(exc, builder.tables, text, path, 1, 1)]) from None
        if problems:
            raise XprotoError(problems)
    if comments:
        attach_comments(result, text, comments)
    return result


def parse_policy(body: str, span: ast.Span) -> ast.Formula:
    """Parse a policy body (the text inside `<` `>`) starting at `span`."""
    builder = _policy_builder()
    with builder.parsing(span):
        try:
            formula: ast.Formula = builder.driver.parse(body)
        except SyntaxProblem as exc:
            raise XprotoError(
                [_syntax_diagnostic(exc, builder.tables, body, span.file, span.line, span.column)]
            ) from None
    return formula


# --- building the parsers ------------------------------------------------------------------


class _Builder:
    """Callbacks that the driver calls on each reduction, plus the per-parse context they need.

    The driver holds on to its builder, so the context (file name, problems found) lives on
    the builder for the duration of one parse; a lock keeps threads apart.
    """

    grammar: str

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.text = (GRAMMAR_DIR / self.grammar).read_text(encoding="utf-8")
        self.tables = load_tables(self.grammar, self.text)
        self.driver = Driver(self.tables, self)


@lru_cache(maxsize=None)
def _xproto_builder() -> _AstBuilder:
    return _AstBuilder()


@lru_cache(maxsize=None)
def _policy_builder() -> _PolicyBuilder:
    return _PolicyBuilder()


# --- syntax errors -----------------------------------------------------------------------


def _syntax_diagnostic(
    exc: SyntaxProblem, tables: Tables, text: str, path: str, line0: int, column0: int
) -> Diagnostic:
    line = exc.line if exc.line and exc.line > 0 else text.count("\n") + 1
    column = exc.column if exc.column and exc.column > 0 else 1
    if line0 > 1 or column0 > 1:
        if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
            # A policy body that stops too early: point at its closing '>', not its last token.
            line = text.count("\n") + 1
            column = len(text) - (text.rfind("\n") + 1) + 1
    # Positions inside a sub-language body are relative to the body's first character.
    span = ast.Span(path, line0 + line - 1, column + column0 - 1 if line == 1 else column)
    if isinstance(exc, UnexpectedCharacters):
        return Diagnostic(
            "error", _bad_character_message(text[exc.pos_in_stream or 0]), "syntax", span
        )
    assert isinstance(exc, UnexpectedToken)
    expected = _describe_expected(tables, exc.expected)
    if exc.token.type == "$END":
        return Diagnostic("error", f"unexpected end of file; expected {expected}", "syntax", span)
    token = exc.token
    found = str(token)
    if found in RESERVED_WORDS and "NAME" in exc.expected:
        message = f"'{found}' is a reserved word and cannot be used as a name here"
    elif token.type == "POLICYBODY":
        message = "unexpected '<': in xproto '<' only opens a policy body"
    elif _ends_inside_escape(text[: token.start_pos or 0]):
        message = (
            f"unexpected {_describe_token(found)}: the policy body before it ended at a '>' "
            "inside '{{...}}'; a policy body ends at the first '>' not preceded by '-'"
        )
    else:
        message = f"unexpected {_describe_token(found)}; expected {expected}"
    return Diagnostic("error", message, "syntax", span)


def _ends_inside_escape(before: str) -> bool:
    """Whether `before` ends with a policy body cut short inside a `{{` Python escape."""
    if not before.rstrip().endswith(">"):
        return False
    body = before[before.rfind("<") :]
    return body.count("{{") > body.count("}}")


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


def _describe_expected(tables: Tables, names: Iterable[str]) -> str:
    words: set[str] = set()
    for name in names:
        if name in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[name])
        elif name in tables.literals:
            words.add(f"'{tables.literals[name]}'")
    ordered = sorted(words, key=lambda w: (not w.startswith("'"), w))
    if not ordered:
        return "something else"
    if len(ordered) == 1:
        return ordered[0]
    return "one of " + ", ".join(ordered)


# --- xproto reductions to AST ----------------------------------------------------------------


class _Bases(tuple):  # type: ignore[type-arg]
    """A message's base list, told apart from the other optional parts by its type."""


class _Through(ast.DottedName):
    pass


class _Reverse(str):
    pass


class _ReverseId(str):
    pass


def _opt(item: Any) -> str | None:
    return None if item is None else str(item)


class _AstBuilder(_Builder):
    """Builds typed AST nodes; collects sub-language errors instead of stopping at one.

    Rules marked `!` in the grammar pass every token, so `items[0]` and `items[-1]` are the
    first and last tokens (or nodes) of the construct and give its span.
    """

    grammar = "xproto.lark"

    def __init__(self) -> None:
        self.path = "<string>"
        self.problems: list[Diagnostic] = []
        super().__init__()

    @contextmanager
    def parsing(self, path: str) -> Iterator[list[Diagnostic]]:
        """Hold the builder for one parse of `path`; yields the list problems go to."""
        with self._lock:
            self.path = path
            self.problems = []
            yield self.problems

    def _span(self, first: Any, last: Any) -> ast.Span:
        """From the first token or node of a construct to just past its last one."""
        if isinstance(first, Token):
            line, column = first.line, first.column
        else:
            line, column = first.span.line, first.span.column
        if isinstance(last, Token):
            end_line = last.end_line
            # Most constructs end with a one-line token (`;`, `}`): no need to look for newlines.
            end_column = last.column + len(last) if end_line == last.line else last.end_column
        else:
            end_line, end_column = last.span.end_line, last.span.end_column
        return ast.Span(self.path, line or 0, column or 0, end_line or line or 0, end_column)

    def _token_span(self, token: Token) -> ast.Span:
        # Values (names, numbers, strings) never span lines.
        line, column = token.line, token.column
        return ast.Span(self.path, line, column, line, column + len(token))

    def start(self, items: list[Any]) -> ast.File:
        if not items:
            return ast.File(self.path, (), ast.Span(self.path, 0, 0, 0))
        return ast.File(self.path, tuple(items), self._span(items[0], items[-1]))

    def import_stmt(self, items: list[Any]) -> ast.Import:
        path = ast.Value("string", str(items[1])).unquoted
        return ast.Import(path, self._span(items[0], items[-1]))

    def package_stmt(self, items: list[Any]) -> ast.Package:
        return ast.Package(items[1].text, self._span(items[0], items[-1]))

    _VALUE_KINDS: dict[str, ast.ValueKind] = {
        "NUM": "number",
        "STRING": "string",
        "NAME": "name",
        "TRUE": "bool",
        "FALSE": "bool",
    }

    def _value(self, token: Token) -> ast.Value:
        return ast.Value(self._VALUE_KINDS[token.type], str(token), self._token_span(token))

    def option_stmt(self, items: list[Any]) -> ast.Option:
        # "option" NAME "=" value ";"
        return ast.Option(str(items[1]), self._value(items[3]), self._span(items[0], items[-1]))

    def directives(self, items: list[Token]) -> tuple[ast.Option, ...]:
        # "[" (NAME "=" value ","?)* "]": four tokens per directive, the last one short.
        options = []
        for at in range(1, len(items) - 1, 4):
            name, value = items[at], items[at + 2]
            options.append(ast.Option(str(name), self._value(value), self._span(name, value)))
        return tuple(options)

    def dotname(self, items: list[Token]) -> ast.DottedName:
        text = str(items[0]) if len(items) == 1 else ".".join(items)
        return ast.DottedName(text, self._span(items[0], items[-1]))

    def policy_ref(self, items: list[Token]) -> str:
        return str(items[0])

    def bases(self, items: list[ast.DottedName]) -> _Bases:
        return _Bases(items)

    def _token(self, items: list[Token]) -> Token:
        # Kept as a token so the enclosing rule can take its position from it.
        return items[0]

    field_name = _token
    modifier = _token
    link_type = _token
    lambda_kind = _token

    def field_type(self, items: list[Any]) -> str:
        child = items[0]
        return child.text if isinstance(child, ast.DottedName) else str(child)

    def through(self, items: list[ast.DottedName]) -> _Through:
        return _Through(items[0].text, items[0].span)

    def reverse(self, items: list[Token]) -> _Reverse:
        return _Reverse(items[0])

    def reverse_id(self, items: list[Token]) -> _ReverseId:
        return _ReverseId(items[0])

    def message(self, items: list[Any]) -> ast.Message:
        # "message" NAME policy? bases? "{" item* "}"
        bases = items[3]
        return ast.Message(
            str(items[1]),
            tuple(bases) if bases is not None else None,
            _opt(items[2]),
            tuple(items[5:-1]),
            self._span(items[0], items[-1]),
        )

    def scalar_field(self, items: list[Any]) -> ast.ScalarField:
        modifier, type_, name, policy, _eq, number, options, _semi = items
        return ast.ScalarField(
            str(modifier),
            type_,
            str(name),
            str(number),
            options or (),
            _opt(policy),
            self._span(modifier, _semi),
        )

    def link_field(self, items: list[Any]) -> ast.LinkField:
        (modifier, link_type, name, policy, _arrow, peer, through, reverse, _eq, number, rid,
         options, _semi) = items  # fmt: skip
        return ast.LinkField(
            modifier=str(modifier),
            link_type=str(link_type),  # type: ignore[arg-type]
            name=str(name),
            peer=peer,
            number=str(number),
            through=ast.DottedName(through.text, through.span) if through is not None else None,
            reverse_name=_opt(reverse),
            reverse_id=_opt(rid),
            options=options or (),
            policy=_opt(policy),
            span=self._span(modifier, _semi),
        )

    def extensions(self, items: list[Any]) -> ast.Extensions:
        # "extensions" NUM "to" end ";"
        return ast.Extensions(str(items[1]), str(items[3]), self._span(items[0], items[-1]))

    def extend(self, items: list[Any]) -> ast.Extend:
        # "extend" NAME "{" item* "}"
        return ast.Extend(str(items[1]), tuple(items[3:-1]), self._span(items[0], items[-1]))

    def enum(self, items: list[Any]) -> ast.Enum:
        # "enum" NAME "{" (value | option)* "}"
        body = items[3:-1]
        values = tuple(c for c in body if isinstance(c, ast.EnumValue))
        options = tuple(c for c in body if isinstance(c, ast.Option))
        return ast.Enum(str(items[1]), values, options, self._span(items[0], items[-1]))

    def enum_value(self, items: list[Any]) -> ast.EnumValue:
        # name "=" NUM ";"
        return ast.EnumValue(str(items[0]), str(items[2]), self._span(items[0], items[-1]))

    def service(self, items: list[Any]) -> ast.Service:
        # "_service" NAME "{" rpc* "}"
        return ast.Service(str(items[1]), tuple(items[3:-1]), self._span(items[0], items[-1]))

    def rpc(self, items: list[Token]) -> ast.Rpc:
        # "rpc" NAME "(" NAME ")" "returns" "(" NAME ")"
        return ast.Rpc(str(items[1]), str(items[3]), str(items[7]), self._span(items[0], items[-1]))

    def policy_def(self, items: list[Token]) -> ast.PolicyDef:
        keyword, name, body = items
        body_span = ast.Span(self.path, body.line or 0, (body.column or 0) + 1)
        try:
            formula = parse_policy(str(body)[1:-1], body_span)
        except XprotoError as exc:
            self.problems.extend(
                Diagnostic(d.severity, f"in policy '{name}': {d.message}", d.rule, d.span)
                for d in exc.diagnostics
            )
            formula = ast.Term("False")
        return ast.PolicyDef(str(name), formula, self._span(keyword, body), source=str(body)[1:-1])

    def lambda_def(self, items: list[Any]) -> ast.LambdaDef:
        kind, name, body = items
        code = str(body)[1:-1].strip()
        if not _is_lambda(code):
            self.problems.append(
                Diagnostic(
                    "error",
                    f"the body of {kind} '{name}' must be a Python lambda expression, e.g. <lambda x: x>",
                    "syntax",
                    ast.Span(self.path, body.line or 0, body.column or 0),
                )
            )
        return ast.LambdaDef(str(kind), str(name), code, self._span(kind, body))  # type: ignore[arg-type]


def _is_lambda(code: str) -> bool:
    import ast as pyast  # only map/reduce bodies need it

    try:
        tree = pyast.parse(code, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return isinstance(tree.body, pyast.Lambda)


# --- policy reductions to formulas -------------------------------------------------------------


class _PolicyBuilder(_Builder):
    """Builds policy formulas; spans are shifted to the body's place in the file."""

    grammar = "policy.lark"
    origin = ast.NOWHERE

    @contextmanager
    def parsing(self, origin: ast.Span) -> Iterator[None]:
        """Hold the builder for one policy body that starts at `origin`."""
        with self._lock:
            self.origin = origin
            yield

    def _span(self, token: Token) -> ast.Span:
        line = token.line or 1
        column = token.column or 1
        if line == 1:
            column += self.origin.column - 1
        return ast.Span(self.origin.file, self.origin.line + line - 1, column)

    def constant(self, items: list[Token]) -> ast.Term:
        return ast.Term(str(items[0]), self._span(items[0]))

    symbol = constant

    def true(self, items: list[Token]) -> ast.Term:
        return ast.Term("True", self.origin)

    def false(self, items: list[Token]) -> ast.Term:
        return ast.Term("False", self.origin)

    def escape(self, items: list[Token]) -> ast.PythonEscape:
        code = str(items[0])[2:-2].lstrip("{ ").rstrip(" }")
        return ast.PythonEscape(code, self._span(items[0]))

    def call(self, items: list[Token]) -> ast.PolicyCall:
        return ast.PolicyCall(str(items[0]), str(items[1]), self._span(items[0]))

    def not_(self, items: list[Any]) -> ast.Not:
        return ast.Not(items[0], self.origin)

    def quantifier(self, items: list[Any]) -> ast.Quantifier:
        kind, variable, body = items
        return ast.Quantifier(kind, str(variable), body, self._span(variable))

    def quantifier_kind(self, items: list[Token]) -> str:
        return str(items[0])

    def equals(self, items: list[Any]) -> ast.Compare:
        return ast.Compare("=", items[0], items[1], self.origin)

    def member(self, items: list[Any]) -> ast.Compare:
        return ast.Compare("in", items[0], items[1], self.origin)

    def and_(self, items: list[Any]) -> ast.Connective:
        return ast.Connective("&", items[0], items[1], self.origin)

    def or_(self, items: list[Any]) -> ast.Connective:
        return ast.Connective("|", items[0], items[1], self.origin)

    def implies(self, items: list[Any]) -> ast.Connective:
        return ast.Connective("->", items[0], items[1], self.origin)
