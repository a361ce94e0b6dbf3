"""Properties of the front end: print/parse round trips, and damaged input fails cleanly."""

from __future__ import annotations

import keyword
import re
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark

from conftest import corpus_file, corpus_names
from xprotogen import ast
from xprotogen.diagnostics import XprotoError
from grammar_support import build_lark, lark_with_our_lexer
from xprotogen.parser import RESERVED_WORDS, parse_text
from xprotogen.printer import print_file
from xprotogen.schema import build_schema

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICY_WORDS = {"forall", "exists", "True", "False", "not", "in"}

# --- a strategy for valid ASTs -----------------------------------------------------------------

names = st.from_regex(r"[A-Za-z_$][A-Za-z0-9_+$]{0,6}", fullmatch=True).filter(
    lambda n: n not in RESERVED_WORDS
)
dotted = st.lists(names, min_size=1, max_size=3).map(".".join)
numbers = st.from_regex(r"[+-]?[0-9]{1,4}(\.[0-9]{1,2})?", fullmatch=True)
field_names = st.one_of(names, st.sampled_from(["message", "max", "+"]))
string_texts = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_characters='"\\'), max_size=8
).map(lambda s: f'"{s}"')

values = st.one_of(
    numbers.map(lambda t: ast.Value("number", t)),
    string_texts.map(lambda t: ast.Value("string", t)),
    st.sampled_from(["true", "false"]).map(lambda t: ast.Value("bool", t)),
    names.map(lambda t: ast.Value("name", t)),
)
options = st.builds(ast.Option, names, values)
maybe_policy = st.none() | names

scalar_fields = st.builds(
    ast.ScalarField,
    modifier=st.sampled_from(["required", "optional", "repeated"]),
    type=st.sampled_from(["string", "int32", "bool", "float", "bytes"]) | dotted,
    name=field_names,
    number=numbers,
    options=st.lists(options, max_size=3).map(tuple),
    policy=maybe_policy,
)
link_fields = st.builds(
    ast.LinkField,
    modifier=st.sampled_from(["required", "optional", "repeated"]),
    link_type=st.sampled_from(["manytoone", "manytomany", "onetoone"]),
    name=field_names,
    peer=dotted.map(ast.DottedName),
    number=numbers,
    through=st.none() | dotted.map(ast.DottedName),
    reverse_name=st.none() | field_names,
    reverse_id=st.none() | numbers,
    options=st.lists(options, max_size=3).map(tuple),
    policy=maybe_policy,
)
enums = st.builds(
    ast.Enum,
    names,
    st.lists(st.builds(ast.EnumValue, field_names, numbers), max_size=3).map(tuple),
    st.lists(options, max_size=2).map(tuple),
)
extensions = st.builds(ast.Extensions, numbers, numbers | st.just("max"))


def _message_items(
    children: st.SearchStrategy[ast.MessageItem],
) -> st.SearchStrategy[ast.MessageItem]:
    return st.one_of(scalar_fields, link_fields, options, enums, extensions, children)


messages = st.recursive(
    st.builds(
        ast.Message,
        names,
        st.none() | st.lists(dotted.map(ast.DottedName), max_size=3).map(tuple),
        maybe_policy,
        st.lists(st.one_of(scalar_fields, link_fields, options), max_size=5).map(tuple),
    ),
    lambda inner: st.one_of(
        st.builds(
            ast.Message,
            names,
            st.none() | st.lists(dotted.map(ast.DottedName), min_size=1, max_size=2).map(tuple),
            maybe_policy,
            st.lists(_message_items(inner), max_size=4).map(tuple),
        ),
        st.builds(ast.Extend, names, st.lists(_message_items(inner), max_size=3).map(tuple)),
    ),
    max_leaves=6,
)

symbols = st.from_regex(r"[A-Za-z_$][.A-Za-z0-9_+$]{0,8}(\(\))?", fullmatch=True).filter(
    lambda s: s not in POLICY_WORDS
)
terms = st.one_of(
    symbols.map(ast.Term),
    numbers.map(ast.Term),
    st.sampled_from(["True", "False"]).map(ast.Term),
    string_texts.filter(lambda s: ">" not in s).map(ast.Term),
    st.from_regex(r"[a-z]+(\.[a-z]+)?( == [0-9])?", fullmatch=True).map(ast.PythonEscape),
    st.builds(
        ast.PolicyCall,
        symbols.filter(lambda s: "(" not in s),
        symbols.filter(lambda s: "(" not in s),
    ),
)
formulas = st.recursive(
    terms,
    lambda inner: st.one_of(
        st.builds(ast.Compare, st.sampled_from(["=", "in"]), terms, terms),
        st.builds(ast.Not, inner),
        st.builds(ast.Connective, st.sampled_from(["&", "|", "->"]), inner, inner),
        st.builds(
            ast.Quantifier,
            st.sampled_from(["forall", "exists"]),
            symbols.filter(lambda s: "(" not in s),
            inner,
        ),
    ),
    max_leaves=8,
)
# Short lower-case words can be Python keywords ("as", "in", "if"), which no lambda may use.
lambdas = st.from_regex(r"lambda [a-z]{1,3}: [a-z]{1,3}(\.[a-z]{1,4})?", fullmatch=True).filter(
    lambda code: not any(keyword.iskeyword(word) for word in re.findall(r"[a-z]+", code[6:]))
)

top_level = st.one_of(
    messages,
    enums,
    st.builds(ast.PolicyDef, names, formulas),
    st.builds(ast.LambdaDef, st.sampled_from(["map", "reduce"]), names, lambdas),
    st.builds(
        ast.Service,
        names,
        st.lists(st.builds(ast.Rpc, names, names, names), max_size=3).map(tuple),
    ),
    st.builds(ast.Import, st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10)),
    st.builds(ast.Package, dotted),
    options,
)
files = st.builds(ast.File, st.just("gen.xproto"), st.lists(top_level, max_size=6).map(tuple))


@SETTINGS
@given(files)
def test_printed_file_parses_back_to_the_same_ast(tree: ast.File) -> None:
    text = print_file(tree)
    assert parse_text(text, "gen.xproto") == tree, text


# --- damaged corpus files fail with diagnostics only ------------------------------------------

SOURCES = {name: corpus_file(name).read_text(encoding="utf-8") for name in corpus_names()}
TOKEN = re.compile(r"\s+|\w+|.", re.S)


@st.composite
def damaged_sources(draw: st.DrawFn) -> str:
    text = SOURCES[draw(st.sampled_from(sorted(SOURCES)))]
    tokens = TOKEN.findall(text)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["delete", "insert", "duplicate", "swap", "truncate", "chars"]))
        at = draw(st.integers(0, max(len(tokens) - 1, 0)))
        if how == "delete" and tokens:
            del tokens[at]
        elif how == "insert":
            tokens.insert(at, draw(st.sampled_from(tokens or ["x"])))
        elif how == "duplicate" and tokens:
            tokens.insert(at, tokens[at])
        elif how == "swap" and len(tokens) > 1:
            other = draw(st.integers(0, len(tokens) - 1))
            tokens[at], tokens[other] = tokens[other], tokens[at]
        elif how == "truncate":
            return "".join(tokens)[: draw(st.integers(0, len("".join(tokens))))]
        else:
            tokens.insert(at, draw(st.text(min_size=1, max_size=3)))
    return "".join(tokens)


@SETTINGS
@given(damaged_sources())
def test_damaged_sources_raise_only_xproto_errors_with_lines_in_the_file(text: str) -> None:
    line_count = text.count("\n") + 1
    try:
        build_schema([parse_text(text, "damaged.xproto")])
    except XprotoError as exc:
        assert exc.diagnostics
        for diagnostic in exc.diagnostics:
            assert diagnostic.span.file == "damaged.xproto"
            assert 1 <= diagnostic.span.line <= line_count, diagnostic


# --- the fast lexer agrees with Lark's ---------------------------------------------------------


@lru_cache(maxsize=None)
def _lark_basic_lexer() -> Lark:
    return build_lark("xproto.lark")


def _lark_tokens(text: str) -> list[tuple[str, str, int, int]]:
    lark = _lark_basic_lexer()
    return [(t.type, str(t), t.line or 0, t.column or 0) for t in lark.lex(text)]


def _our_tokens(text: str) -> list[tuple[str, str, int, int]]:
    from lark.lexer import LexerState
    from lark.utils import TextSlice

    lexer = lark_with_our_lexer().parser.lexer
    state = LexerState(TextSlice.cast_from(text))
    return [(t.type, str(t), t.line or 0, t.column or 0) for t in lexer.lex(state, None)]


def _tokens_or_error(lex: object, text: str) -> object:
    try:
        return lex(text)  # type: ignore[operator]
    except Exception as exc:  # both raise UnexpectedCharacters at the same place
        return (type(exc).__name__, getattr(exc, "line", None), getattr(exc, "column", None))


@pytest.mark.parametrize("name", corpus_names())
def test_fast_lexer_matches_lark_lexer_on_corpus(name: str) -> None:
    assert _our_tokens(SOURCES[name]) == _lark_tokens(SOURCES[name])


@SETTINGS
@given(damaged_sources())
def test_fast_lexer_matches_lark_lexer_on_damaged_sources(text: str) -> None:
    assert _tokens_or_error(_our_tokens, text) == _tokens_or_error(_lark_tokens, text)
