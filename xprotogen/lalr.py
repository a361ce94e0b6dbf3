"""A Lark-free run time for our LALR(1) grammars: lexer, parse loop and table cache.

Lark stays the source of truth: it analyses `grammar/*.lark` and this module saves what the
parse loop needs (the table, the terminals in Lark's lexer order, keyword lists, each rule's
shape and callback name) in a small marshal file. Importing Lark and loading its own cache
cost about 40 ms per run, which is most of a short `xsgen` run; loading this file costs about
1 ms. Lark is imported only to (re)build the file when it is missing or stale.

The reductions reproduce what Lark's tree builder does with `maybe_placeholders=True`:
anonymous tokens are dropped unless the rule keeps them (`!rule`), `None` stands for a missing
`[x]`, `_rule` children are inlined, and `?rule` passes a single child through.
"""

from __future__ import annotations

import marshal
import os
import re
import sys
import zlib
from typing import Any, Callable, Iterable, Iterator

# Bump whenever the layout of the saved tables or the way they are derived changes.
_FORMAT = 1

Callback = Callable[[list[Any]], Any]


class Token(str):
    """A token: its text (the string itself), terminal name and position (1-based)."""

    # The lexer stores only what it must; the rest follows from the text when asked for.
    __slots__ = ("type", "start_pos", "line", "column", "end_line")

    type: str
    start_pos: int
    line: int
    column: int
    end_line: int

    @property
    def value(self) -> str:
        return str(self)

    @property
    def end_pos(self) -> int:
        return self.start_pos + len(self)

    @property
    def end_column(self) -> int:
        newline = self.rfind("\n")
        return self.column + len(self) if newline < 0 else len(self) - newline

    @classmethod
    def end_marker(cls, last: Token | None) -> Token:
        """The `$END` token, placed on the last real token as Lark places it (or at 1:1)."""
        token = str.__new__(cls, "")
        token.type = "$END"
        if last is None:
            token.start_pos, token.line, token.column, token.end_line = 0, 1, 1, 1
        else:
            token.start_pos, token.line, token.column = last.start_pos, last.line, last.column
            token.end_line = last.end_line
        return token


class _Inlined:
    """The children of a `_rule`, which the enclosing rule splices into its own."""

    __slots__ = ("data", "children")

    def __init__(self, data: str, children: list[Any]) -> None:
        self.data = data
        self.children = children


class SyntaxProblem(Exception):
    """Input the grammar does not accept, at `line`/`column` (1-based) and `pos_in_stream`."""

    line: int
    column: int
    pos_in_stream: int


class UnexpectedCharacters(SyntaxProblem):
    """No terminal matches at `pos_in_stream` (same name and fields as Lark's error)."""

    def __init__(self, text: str, pos: int, line: int, column: int) -> None:
        super().__init__(f"no terminal matches {text[pos]!r} at line {line} column {column}")
        self.pos_in_stream, self.line, self.column = pos, line, column


class UnexpectedToken(SyntaxProblem):
    """`token` is not allowed here; `expected` names the terminals that are."""

    def __init__(self, token: Token, expected: set[str]) -> None:
        super().__init__(f"unexpected token {token!r} at line {token.line}")
        self.token, self.expected = token, expected
        self.pos_in_stream, self.line, self.column = token.start_pos, token.line, token.column


# --- the lexer -----------------------------------------------------------------------------


class Lexer:
    """Lark's basic lexer, done with one regex match per token and a keyword dict.

    The terminals are Lark's, in the order Lark's basic lexer tries them, so both lexers give
    the same tokens (a test compares them). Ignored terminals (whitespace, comments) are skipped
    by the same match, as a prefix of the token: equivalent as long as no token can start
    where an ignored terminal starts, which holds for both grammars. A string terminal that a
    regex terminal matches in full (a keyword such as `message`, which NAME also matches) is
    looked up after the regex terminal matched, as Lark's "unless" callbacks do it.
    """

    def __init__(self, pattern: str, skip: str, keywords: dict[str, dict[str, str]]) -> None:
        self._pattern = re.compile(pattern)
        self._skip = re.compile(skip)
        self._keywords = keywords

    def lex(self, text: str, comments: list[tuple[int, int]] | None = None) -> Iterator[Token]:
        """The tokens of `text`; raises `UnexpectedCharacters` where none matches.

        With a `comments` list, the (start, end) offsets of the comments skipped between
        tokens are appended to it, in order.
        """
        keywords = self._keywords
        new_token = str.__new__
        count, rindex = text.count, text.rindex
        line, line_start, pos, end = 1, 0, 0, len(text)
        # Comments are found without slowing the common token: the places where one could
        # start are listed up front (one C-level scan), and only a token whose skipped prefix
        # reaches the next such place is looked at more closely.
        openers = _Openers(text) if comments is not None else None
        next_opener = openers.next if openers is not None else end + 1
        # finditer walks the text in C; a match that does not start where the previous one
        # ended means characters no terminal matches.
        for found in self._pattern.finditer(text):
            if found.start() != pos:
                break
            kind: Any = found.lastgroup
            start, end_of_token = found.span(kind)
            if next_opener < start:
                assert openers is not None and comments is not None
                next_opener = openers.take(pos, start, comments)
            if start != pos:
                skipped = count("\n", pos, start)
                if skipped:
                    line += skipped
                    line_start = rindex("\n", pos, start) + 1
            pos = end_of_token
            value = found[kind]
            # Setting the slots directly skips a call per token: this runs thousands of times.
            token = new_token(Token, value)
            token.start_pos = start
            token.line = line
            token.column = start - line_start + 1
            if "\n" in value:
                line += value.count("\n")
                line_start = rindex("\n", start, pos) + 1
            token.end_line = line
            table = keywords.get(kind)
            token.type = kind if table is None else table.get(value, kind)
            yield token
        if pos < end:
            if openers is not None and comments is not None:
                openers.take(pos, end, comments)
            self._finish(text, pos, line, line_start)

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
        raise UnexpectedCharacters(text, bad, line, bad - line_start + 1)


class _Openers:
    """Where a comment could start (`//`, `/*`): in skipped text it does; in a token it does not."""

    _OPENER = re.compile(r"/[/*]")
    _COMMENT = re.compile(r"//[^\n]*|/\*[\s\S]*?\*/")

    def __init__(self, text: str) -> None:
        self._text = text
        self._starts = [m.start() for m in self._OPENER.finditer(text)]
        self._index = 0
        self.next = self._starts[0] if self._starts else len(text) + 1

    def take(self, skipped_from: int, skipped_to: int, comments: list[tuple[int, int]]) -> int:
        """Record the comments in the skipped text [skipped_from, skipped_to); the next opener."""
        starts, index = self._starts, self._index
        while index < len(starts) and starts[index] < skipped_to:
            at = starts[index]
            index += 1
            if at < skipped_from:
                continue  # inside a token, such as "http://..." in a string
            found = self._COMMENT.match(self._text, at)
            if found is None:
                continue
            comments.append((at, found.end()))
            while index < len(starts) and starts[index] < found.end():
                index += 1  # "//" inside this comment
        self._index = index
        return starts[index] if index < len(starts) else len(self._text) + 1


# --- the parse loop ------------------------------------------------------------------------


class Driver:
    """Runs an LALR(1) table: shift/reduce over the tokens, one callback per reduction.

    Its syntax errors are `UnexpectedToken` with the same expected-terminal sets as Lark's.
    """

    def __init__(self, tables: Tables, builder: object) -> None:
        self.lexer = Lexer(tables.pattern, tables.skip, tables.keywords)
        callbacks = [_callback(builder, *rule) for rule in tables.rules]
        sizes = [(rule[0], rule[1]) for rule in tables.rules]
        # A shift is the next state (an int); a reduction is (size, rule name, callback).
        self._states: dict[int, dict[str, Any]] = {
            state: {
                symbol: (action if action >= 0 else (*sizes[~action], callbacks[~action]))
                for symbol, action in actions.items()
            }
            for state, actions in tables.states.items()
        }
        self._start = tables.start
        self._end = tables.end

    def parse(self, text: str, comments: list[tuple[int, int]] | None = None) -> Any:
        """The value the start rule's callback returns for `text`.

        The offsets of the comments in `text` go to `comments` when it is given.
        """
        states = self._states
        state = self._start
        state_stack = [state]
        value_stack: list[Any] = []
        push_state, push_value = state_stack.append, value_stack.append
        token = None
        for token in self.lexer.lex(text, comments):
            kind = token.type
            while True:
                try:
                    action = states[state][kind]
                except KeyError:
                    raise self._unexpected(token, state) from None
                if action.__class__ is int:
                    state = action
                    push_state(state)
                    push_value(token)
                    break
                # The reduction, written out: this loop runs thousands of times per file.
                size, origin, callback = action
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                state = states[state_stack[-1]][origin]
                push_state(state)
                push_value(callback(children))
        end = Token.end_marker(token)
        while True:
            try:
                size, origin, callback = states[state_stack[-1]]["$END"]
            except KeyError:
                raise self._unexpected(end, state_stack[-1]) from None
            if size:
                children = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                children = []
            state_stack.append(states[state_stack[-1]][origin])
            value_stack.append(callback(children))
            if state_stack[-1] == self._end:
                return value_stack[-1]

    def _unexpected(self, token: Token, state: int) -> UnexpectedToken:
        expected = {symbol for symbol in self._states[state] if symbol.isupper()}
        return UnexpectedToken(token, expected)


def _callback(
    builder: object,
    size: int,
    origin: str,
    name: str,
    expand_single: bool,
    include: tuple[tuple[int, bool, int], ...] | None,
    append_none: int,
) -> Callback:
    """The reduction for one rule, shaping its children as Lark's tree builder would."""
    user: Callback | None = getattr(builder, name, None)
    call: Callback = user if user is not None else (lambda children: _Inlined(name, children))
    if expand_single:
        inner = call

        def call(children: list[Any]) -> Any:
            return children[0] if len(children) == 1 else inner(children)

    if include is None:
        return call
    # The child list is built by one expression made for this rule's shape (as Lark's filter
    # would build it step by step): a reduction runs thousands of times per file.
    parts: list[str] = []
    for at, expand, nones in include:
        parts += ["None"] * nones
        parts.append(f"*children[{at}].children" if expand else f"children[{at}]")
    parts += ["None"] * append_none
    shaped: Callback = eval(  # noqa: S307 - the text is made above from integers only
        f"lambda children: call([{', '.join(parts)}])", {"call": call}
    )
    return shaped


# --- the tables and their cache ------------------------------------------------------------


class Tables:
    """What the run time needs from Lark's analysis of one grammar (plain data, marshal-able).

    `rules[i]` is (size, origin, callback name, expand single child, children to include as
    (index, inline it, Nones before it) or None to pass all, Nones to append); in `states`, an
    action >= 0 shifts to that state and an action < 0 reduces by rule `~action`. `literals`
    maps each string terminal to its text, for error messages.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.grammar: str = data["grammar"]
        self.pattern: str = data["pattern"]
        self.skip: str = data["skip"]
        self.keywords: dict[str, dict[str, str]] = data["keywords"]
        self.literals: dict[str, str] = data["literals"]
        self.rules: list[tuple[Any, ...]] = data["rules"]
        self.states: dict[int, dict[str, int]] = data["states"]
        self.start: int = data["start"]
        self.end: int = data["end"]
        self.data = data


def load_tables(name: str, grammar: str) -> Tables:
    """The tables for `grammar` (the text of grammar file `name`), from the cache if current.

    The cache file lives in the user's cache directory, so it works from a checkout and from
    an installed wheel alike; its name carries a checksum of the grammar, the format, the
    Python version (marshal's format), Lark's version and this module's source, and the file
    holds the full grammar text, which must match. If it is missing or stale Lark builds the
    tables and they are saved; when nothing can be written they are just used.
    """
    path = _cache_file(name, grammar)
    try:
        with open(path, "rb") as stream:
            data = marshal.load(stream)
        if isinstance(data, dict) and data.get("grammar") == grammar:
            return Tables(data)
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        pass  # missing, unreadable or damaged: rebuilt below
    tables = build_tables(grammar)
    _save(path, tables.data)
    return tables


def _cache_file(name: str, grammar: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "xprotogen")
    stem = name.rsplit(".", 1)[0]
    # Tables from another Lark (its analysis may number or order things differently) or from
    # another version of this module (which reads them) are stale.
    key = f"{_FORMAT}:{sys.version_info[:2]}:{lark_version()}:{_own_source_crc()}:{grammar}"
    checksum = zlib.crc32(key.encode("utf-8"))
    return os.path.join(folder, f"{stem}-{checksum:08x}.tables")


_LARK_VERSION = re.compile(r"""^__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""", re.M)


def lark_version() -> str:
    """The installed Lark's version, read from its source: importing Lark (or
    importlib.metadata) costs more than the whole cached parse."""
    import importlib.util

    spec = importlib.util.find_spec("lark")
    if spec is None or spec.origin is None:
        return "none"
    try:
        with open(spec.origin, encoding="utf-8") as stream:
            found = _LARK_VERSION.search(stream.read())
    except OSError:
        return "unknown"
    return found.group(1) if found else "unknown"


def _own_source_crc() -> int:
    try:
        with open(__file__, "rb") as stream:
            return zlib.crc32(stream.read())
    except OSError:
        return 0


def _save(path: str, data: dict[str, Any]) -> None:
    """Write atomically (parallel runs may race); a read-only cache is not an error."""
    from .output import write_atomically

    try:
        write_atomically(path, marshal.dumps(data))
    except (OSError, ValueError):
        pass


# --- building the tables with Lark (only when the cache is missing or stale) ---------------


def build_tables(grammar: str) -> Tables:
    """Run Lark's LALR analysis of `grammar` and keep what `Driver` and `Lexer` need."""
    from lark import Lark
    from lark.parse_tree_builder import (
        ChildFilterLALR,
        ChildFilterLALR_NoPlaceholders,
        maybe_create_child_filter,
    )

    lark = Lark(grammar, parser="lalr", lexer="basic", maybe_placeholders=True)
    table = lark.parser.parser.parser.parse_table
    rules: list[tuple[Any, ...]] = []
    index: dict[Any, int] = {}
    for rule in lark.rules:
        options = rule.options
        made = maybe_create_child_filter(
            rule.expansion, options.keep_all_tokens, False, list(options.empty_indices)
        )
        include: tuple[tuple[int, bool, int], ...] | None
        if made is None:
            include, append_none = None, 0
        elif made.func is ChildFilterLALR:
            include = tuple((i, bool(x), int(n)) for i, x, n in made.args[0])
            append_none = int(made.args[1])
        else:
            assert made.func is ChildFilterLALR_NoPlaceholders, made
            include, append_none = tuple((i, bool(x), 0) for i, x in made.args[0]), 0
        name = rule.alias or options.template_source or rule.origin.name
        expand_single = bool(options.expand1 and not rule.alias)
        index[rule] = len(rules)
        rules.append(
            # Lark's names may be `str` subclasses, which marshal refuses.
            (len(rule.expansion), str(rule.origin.name), str(name), expand_single)
            + (include, append_none)
        )
    states = {
        int(state): {
            str(symbol): (int(arg) if action.name == "Shift" else ~index[arg])
            for symbol, (action, arg) in actions.items()
        }
        for state, actions in table.states.items()
    }
    (start,) = table.start_states
    pattern, skip, keywords = lexer_spec(lark.lexer_conf.terminals, lark.lexer_conf.ignore)
    literals = {
        str(t.name): str(t.pattern.value)
        for t in lark.lexer_conf.terminals
        if t.pattern.type == "str"
    }
    return Tables(
        {
            "grammar": grammar,
            "pattern": pattern,
            "skip": skip,
            "keywords": keywords,
            "literals": literals,
            "rules": rules,
            "states": states,
            "start": int(table.start_states[start]),
            "end": int(table.end_states[start]),
        }
    )


def lexer_spec(
    terminals: Iterable[Any], ignore: Iterable[str]
) -> tuple[str, str, dict[str, dict[str, str]]]:
    """From Lark's terminal definitions: the token regex, the skip regex and the keywords."""
    ordered = sorted(
        terminals,
        key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name),
    )
    ignored_names = set(ignore)
    ignored = [t for t in ordered if t.name in ignored_names]
    regex_terminals = [t for t in ordered if t.pattern.type != "str"]
    keywords: dict[str, dict[str, str]] = {}
    scanned = []
    for terminal in ordered:
        owner = _keyword_owner(terminal, regex_terminals)
        if owner is not None:
            keywords.setdefault(owner, {})[str(terminal.pattern.value)] = str(terminal.name)
        elif terminal.name not in ignored_names:
            scanned.append(terminal)
    # Possessive: once ignored text is skipped it is never given back to become tokens.
    skip = "(?:" + "|".join(t.pattern.to_regexp() for t in ignored) + ")*+" if ignored else ""
    tokens = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in scanned)
    return f"{skip}(?:{tokens})", skip, keywords


def _keyword_owner(terminal: Any, regex_terminals: list[Any]) -> str | None:
    """The regex terminal that swallows this string terminal whole, if any."""
    if terminal.pattern.type != "str":
        return None
    word = terminal.pattern.value
    for candidate in regex_terminals:
        if candidate.priority != terminal.priority:
            continue
        found = re.match(candidate.pattern.to_regexp(), word)
        if found is not None and found.group() == word:
            return str(candidate.name)
    return None
