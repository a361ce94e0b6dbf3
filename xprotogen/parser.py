"""Text to AST: the xproto grammar, the policy sub-grammar, and friendly syntax errors.

Both grammars are Lark LALR(1) grammars (`grammar/*.lark`); Lark analyses them and caches the
result. Speed comes from four choices (figures in docs/performance.md):

* `_MasterLexer` lexes with one compiled regex built from Lark's own terminal definitions and
  turns names into keywords by dict lookup, instead of Lark's per-terminal scanning.
* AST nodes are built while parsing (Lark's `transformer=` option), so no parse tree is made.
  Such callbacks receive no position metadata, so rules that need a span keep all their tokens
  (`!rule` in the grammar) and the span is taken from their first and last token.
* `_Driver` runs Lark's LALR table and callbacks in one tight loop.
* Lark's analysis of each grammar is cached in the user's cache directory, which works the
  same from a checkout and from an installed wheel.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from lark import Lark, Token, Transformer
from lark import __version__ as lark_version
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer, LexerState, PatternStr
from lark.utils import TextSlice

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
    with builder.parsing(path) as problems:
        try:
            result: ast.File = builder.driver.parse(text)
        except UnexpectedInput as exc:
            raise XprotoError([_syntax_diagnostic(exc, builder.lark, text, path, 1, 1)]) from None
        if problems:
            raise XprotoError(problems)
    return result


def parse_policy(body: str, span: ast.Span) -> ast.Formula:
    """Parse a policy body (the text inside `<` `>`) starting at `span`."""
    builder = _policy_builder()
    with builder.parsing(span):
        try:
            formula: ast.Formula = builder.driver.parse(body)
        except UnexpectedInput as exc:
            raise XprotoError(
                [_syntax_diagnostic(exc, builder.lark, body, span.file, span.line, span.column)]
            ) from None
    return formula


def build_lark(grammar: str, *, strict: bool = False) -> Lark:
    """A plain Lark LALR parser for `grammar` (a file in `grammar/`) with Lark's own lexer.

    Not used for parsing; it exists so tests can check the grammars with `strict=True`, which
    asks Lark to prove that no two terminals collide.
    """
    return Lark(
        (GRAMMAR_DIR / grammar).read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        maybe_placeholders=True,
        strict=strict,
    )


# --- the lexer -----------------------------------------------------------------------------


class _MasterLexer(Lexer):
    """Lark's basic lexer, done with one regex match per token and a keyword dict.

    The terminals come from Lark, in the order Lark's own basic lexer tries them, so both
    lexers produce the same tokens (a test compares them). Ignored terminals (whitespace,
    comments) are skipped by the same match, as a prefix of the token: that is equivalent as
    long as no token can start where an ignored terminal starts, which holds for both
    grammars. A string terminal that a regex terminal matches in full (a keyword such as
    `message`, which NAME also matches) is looked up after the regex terminal matched, as
    Lark's "unless" callbacks do it.
    """

    __future_interface__ = 2

    def __init__(self, conf: Any) -> None:
        terminals = sorted(
            conf.terminals,
            key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name),
        )
        ignored = [t for t in terminals if t.name in conf.ignore]
        regex_terminals = [t for t in terminals if not isinstance(t.pattern, PatternStr)]
        keywords: dict[str, dict[str, str]] = {}
        scanned = []
        for terminal in terminals:
            owner = _keyword_owner(terminal, regex_terminals)
            if owner is not None:
                keywords.setdefault(owner, {})[terminal.pattern.value] = terminal.name
            elif terminal not in ignored:
                scanned.append(terminal)
        # Possessive: once ignored text is skipped it is never given back to become tokens.
        skip = "(?:" + "|".join(t.pattern.to_regexp() for t in ignored) + ")*+" if ignored else ""
        tokens = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in scanned)
        self._pattern = re.compile(f"{skip}(?:{tokens})")
        self._skip = re.compile(skip)
        self._keywords = keywords
        self._allowed = frozenset(t.name for t in terminals if t not in ignored)

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        source: Any = lexer_state.text
        text: str = getattr(source, "text", source)
        match = self._pattern.match
        keywords = self._keywords
        new_token = str.__new__
        line, line_start, pos, end = 1, 0, 0, len(text)
        while pos < end:
            found = match(text, pos)
            if found is None:
                self._finish(text, pos, line, line_start)
                return
            kind = found.lastgroup
            assert kind is not None
            start = found.start(kind)
            if start != pos and text.count("\n", pos, start):
                line += text.count("\n", pos, start)
                line_start = text.rindex("\n", pos, start) + 1
            value = found.group(kind)
            pos = found.end()
            start_line, column = line, start - line_start + 1
            if "\n" in value:
                line += value.count("\n")
                line_start = text.rindex("\n", start, pos) + 1
            table = keywords.get(kind)
            if table is not None:
                kind = table.get(value, kind)
            # Setting the slots directly skips Token.__new__'s argument juggling.
            token = new_token(Token, value)
            token.type = kind
            token.value = value
            token.start_pos = start
            token.line = start_line
            token.column = column
            token.end_line = line
            token.end_column = pos - line_start + 1
            token.end_pos = pos
            yield token

    def _finish(self, text: str, pos: int, line: int, line_start: int) -> None:
        """No token at `pos`: fine if only ignored text is left, else a lexical error."""
        stop = self._skip.match(text, pos)
        bad = stop.end() if stop is not None else pos
        if bad == len(text):
            return
        newlines = text.count("\n", pos, bad)
        if newlines:
            line += newlines
            line_start = text.rindex("\n", pos, bad) + 1
        raise UnexpectedCharacters(  # type: ignore[no-untyped-call]
            text, bad, line, bad - line_start + 1, allowed=self._allowed
        )


def _keyword_owner(terminal: Any, regex_terminals: Sequence[Any]) -> str | None:
    """The regex terminal that swallows this string terminal whole, if any."""
    if not isinstance(terminal.pattern, PatternStr):
        return None
    word = terminal.pattern.value
    for candidate in regex_terminals:
        if candidate.priority != terminal.priority:
            continue
        found = re.match(candidate.pattern.to_regexp(), word)
        if found is not None and found.group() == word:
            return str(candidate.name)
    return None


# --- the LALR driver ------------------------------------------------------------------------


class _Driver:
    """Runs Lark's LALR(1) table with the reductions Lark prepared, in one tight loop.

    Lark computes (and caches) the table and wraps each rule's callback so that it sees the
    children the grammar promises (tokens filtered, `[x]` placeholders, `_rule` inlining).
    Lark's own loop is general (interactive parsing, error recovery); this one only parses,
    which roughly halves the time spent outside the callbacks. Its errors are Lark's own
    `UnexpectedToken`, with the same expected-terminal sets.
    """

    def __init__(self, lark: Lark) -> None:
        parser = lark.parser.parser.parser
        table = parser.parse_table
        callbacks = parser.callbacks
        self._lexer = lark.parser.lexer
        # A shift is the next state (an int); a reduction is (size, rule name, callback).
        self._states: dict[Any, dict[str, Any]] = {
            state: {
                symbol: (
                    arg
                    if action.name == "Shift"
                    else (len(arg.expansion), arg.origin.name, callbacks[arg])
                )
                for symbol, (action, arg) in actions.items()
            }
            for state, actions in table.states.items()
        }
        (start,) = table.start_states
        self._start = table.start_states[start]
        self._end = table.end_states[start]

    def parse(self, text: str) -> Any:
        states = self._states
        state_stack = [self._start]
        value_stack: list[Any] = []
        token = None
        for token in self._lexer.lex(LexerState(TextSlice.cast_from(text)), None):
            kind = token.type
            while True:
                try:
                    action = states[state_stack[-1]][kind]
                except KeyError:
                    raise self._unexpected(token, state_stack[-1]) from None
                if action.__class__ is int:
                    state_stack.append(action)
                    value_stack.append(token)
                    break
                # The reduction, written out: this loop runs thousands of times per file.
                size, origin, callback = action
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                state_stack.append(states[state_stack[-1]][origin])
                value_stack.append(callback(children))
        end = (
            Token.new_borrow_pos("$END", "", token)
            if token is not None
            else Token("$END", "", 0, 1, 1)
        )
        while True:
            try:
                action = states[state_stack[-1]]["$END"]
            except KeyError:
                raise self._unexpected(end, state_stack[-1]) from None
            self._reduce(action, state_stack, value_stack)
            if state_stack[-1] == self._end:
                return value_stack[-1]

    def _reduce(self, action: Any, state_stack: list[Any], value_stack: list[Any]) -> None:
        size, origin, callback = action
        if size:
            children = value_stack[-size:]
            del state_stack[-size:]
            del value_stack[-size:]
        else:
            children = []
        state_stack.append(self._states[state_stack[-1]][origin])
        value_stack.append(callback(children))

    def _unexpected(self, token: Token, state: Any) -> UnexpectedToken:
        expected = {symbol for symbol in self._states[state] if symbol.isupper()}
        return UnexpectedToken(token, expected)  # type: ignore[no-untyped-call]


# --- building the parsers ------------------------------------------------------------------


def _cache_path(grammar: str, text: str) -> str | bool:
    """Where Lark keeps the analysed grammar: a file in the user's cache directory.

    The name carries a digest of the grammar and the Lark and Python versions, so checkouts
    and interpreters that share the directory do not overwrite each other's file. When no
    directory can be written, Lark's own default (the temporary directory) is used; Lark
    carries on without a cache if that fails too.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "xprotogen")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return True
    if not os.access(folder, os.W_OK):
        return True
    key = f"{text}{lark_version}{sys.version_info[:2]}{_MasterLexer.__qualname__}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return os.path.join(folder, f"{Path(grammar).stem}-{digest}.lark-cache")


def _build(grammar: str, transformer: Transformer) -> Lark:  # type: ignore[type-arg]
    text = (GRAMMAR_DIR / grammar).read_text(encoding="utf-8")
    return Lark(
        text,
        parser="lalr",
        lexer=_MasterLexer,
        maybe_placeholders=True,
        transformer=transformer,
        cache=_cache_path(grammar, text),
    )


class _Builder(Transformer):  # type: ignore[type-arg]
    """Callbacks that Lark calls on each reduction, plus the per-parse context they need.

    The Lark parser holds on to its transformer, so the context (file name, problems found)
    lives on the builder for the duration of one parse; a lock keeps threads apart.
    """

    grammar: str

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.lark = _build(self.grammar, self)
        self.driver = _Driver(self.lark)


@lru_cache(maxsize=None)
def _xproto_builder() -> _AstBuilder:
    return _AstBuilder()


@lru_cache(maxsize=None)
def _policy_builder() -> _PolicyBuilder:
    return _PolicyBuilder()


# --- syntax errors -----------------------------------------------------------------------


def _syntax_diagnostic(
    exc: UnexpectedInput, lark: Lark, text: str, path: str, line0: int, column0: int
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
    names: Iterable[str] = getattr(exc, "expected", None) or getattr(exc, "accepts", None) or ()
    expected = _describe_expected(lark, names)
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
        """From the first token or node of a construct to its last one."""
        if isinstance(first, Token):
            line, column = first.line, first.column
        else:
            line, column = first.span.line, first.span.column
        end_line = last.end_line if isinstance(last, Token) else last.span.end_line
        return ast.Span(self.path, line or 0, column or 0, end_line or line or 0)

    def _token_span(self, token: Token) -> ast.Span:
        return ast.Span(self.path, token.line or 0, token.column or 0, token.end_line or 0)

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
        return ast.PolicyDef(str(name), formula, self._span(keyword, body))

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
