"""The parser: syntax diagnostics for the reference's known mistakes, spans, FOL precedence."""

from __future__ import annotations

import pytest
from grammar_support import build_lark
from lark.exceptions import UnexpectedInput

from xprotogen import ast
from xprotogen.diagnostics import Diagnostic, XprotoError
from xprotogen.parser import parse_policy, parse_text

FILE = "case.xproto"


def _error(text: str) -> Diagnostic:
    with pytest.raises(XprotoError) as caught:
        parse_text(text, FILE)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.span.file == FILE
    assert diagnostic.severity == "error"
    return diagnostic


# (source, line, column, words the message must contain: what was found, what was expected)
SYNTAX_ERRORS = {
    "non_ascii_identifier": ("message Café {\n}\n", 1, 12, ["'é'", "U+00E9", "ASCII"]),
    "single_quotes": (
        "message A {\n  required string s = 1 [default = 'x'];\n}\n",
        2,
        36,
        ["single quotes", "double quotes"],
    ),
    "hash_comment": ("# comment\nmessage A {}\n", 1, 1, ["'#'", "// or /* */"]),
    "leading_comma_in_bases": ("message A (,B) {}\n", 1, 12, ["','", "')'", "a name"]),
    "trailing_comma_in_bases": ("message A (B,) {}\n", 1, 14, ["')'", "expected a name"]),
    "policy_after_bases": ("message A (B)::p {}\n", 1, 14, ["'::'", "expected '{'"]),
    "syntax_statement": ('syntax = "proto3";\nmessage A {}\n', 1, 1, ["'syntax'", "'message'"]),
    "empty_statement_at_top_level": ("message A {}\n;\n", 2, 1, ["';'", "'message'"]),
    "empty_statement_in_message": ("message A {\n  ;\n}\n", 2, 3, ["';'", "'required'", "'}'"]),
    "rpc_with_semicolon": (
        "_service S {\n  rpc Get(A) returns (A);\n}\n",
        2,
        25,
        ["';'", "'rpc'", "'}'"],
    ),
    "service_instead_of__service": (
        "service S {\n  rpc Get(A) returns (A)\n}\n",
        1,
        1,
        ["'service'", "'_service'"],
    ),
    "policy_body_syntax_error": (
        "message A {}\npolicy bad < a & | b >\n",
        2,
        18,
        ["policy 'bad'", "'|'", "'not'"],
    ),
    "escape_with_greater_than_truncates_body": (
        "policy p < {{ obj.x > 3 }} >\n",
        1,
        23,
        ["'3'", "'>'", "{{...}}"],
    ),
    "map_body_not_a_lambda": ("map m <x.name>\n", 1, 7, ["map 'm'", "lambda"]),
    "reduce_body_not_an_expression": ("reduce r <lambda: >\n", 1, 10, ["reduce 'r'", "lambda"]),
    "missing_semicolon_after_field": (
        "message A {\n  required string name = 1\n  required string b = 2;\n}\n",
        3,
        3,
        ["'required'", "';'", "'['"],
    ),
    "missing_brace_at_eof": (
        "message A {\n  required string name = 1;\n",
        2,
        27,
        ["end of file", "'}'"],
    ),
    "reserved_to_as_field_name": (
        "message A {\n  required string to = 1;\n}\n",
        2,
        19,
        ["'to'", "reserved"],
    ),
    "reserved_policy_as_field_name": (
        "message A {\n  required int32 policy = 1;\n}\n",
        2,
        18,
        ["'policy'", "reserved"],
    ),
    "reserved_option_as_field_name": (
        "message A {\n  required string option = 1;\n}\n",
        2,
        19,
        ["'option'", "reserved"],
    ),
    "reserved_string_as_field_name": (
        "message A {\n  required string string = 1;\n}\n",
        2,
        19,
        ["'string'", "reserved"],
    ),
    "option_name_max": ("message A {\n  option max = 5;\n}\n", 2, 10, ["'max'", "reserved"]),
}


@pytest.mark.parametrize("case", sorted(SYNTAX_ERRORS))
def test_syntax_error_names_place_found_and_expected(case: str) -> None:
    text, line, column, words = SYNTAX_ERRORS[case]
    diagnostic = _error(text)
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column), diagnostic
    for word in words:
        assert word in diagnostic.message, diagnostic.message


def test_all_policy_and_lambda_errors_are_reported_together() -> None:
    with pytest.raises(XprotoError) as caught:
        parse_text("policy a < x & >\nmap m <1>\npolicy b < | >\n", FILE)
    assert [d.span.line for d in caught.value.diagnostics] == [1, 2, 3]


# --- inputs that parse (the schema or lint judge them) ----------------------------------------


def test_empty_base_list_parses_as_empty_tuple() -> None:
    (message,) = parse_text("message A () {}\n").messages
    assert message.bases == ()


def test_number_and_bool_option_values_parse_with_their_kind() -> None:
    tree = parse_text(
        "option version = 3;\nmessage A {\n  option flag = true;\n  option f = 2.5;\n}\n"
    )
    version = tree.items[0]
    assert isinstance(version, ast.Option)
    assert version.value == ast.Value("number", "3")
    assert tree.messages[0].options == (
        ast.Option("flag", ast.Value("bool", "true")),
        ast.Option("f", ast.Value("number", "2.5")),
    )


def test_map_body_with_leading_space_is_accepted() -> None:
    (item,) = parse_text("map m < lambda x: x.name >\n").items
    assert item == ast.LambdaDef("map", "m", "lambda x: x.name")


def test_message_max_and_plus_are_field_names() -> None:
    text = (
        "message A {\n  required string message = 1;\n  required int32 max = 2;\n"
        "  required manytoone + -> B:+ = 3;\n}\n"
    )
    fields = parse_text(text).messages[0].fields
    assert [f.name for f in fields] == ["message", "max", "+"]
    assert isinstance(fields[2], ast.LinkField) and fields[2].reverse_name == "+"


def test_non_reserved_protobuf_words_are_names() -> None:
    text = "message service {\n  required stream oneof = 1 [default = None];\n}\n"
    (message,) = parse_text(text).messages
    assert message.name == "service"
    assert message.fields[0] == ast.ScalarField(
        "required", "stream", "oneof", "1", (ast.Option("default", ast.Value("name", "None")),)
    )


# --- spans -------------------------------------------------------------------------------------

SPANNED = """\
package xos.core;
message Node::node_policy (XOSBase) {
    option verbose_name = "A node";
    required string name = 1 [max_length = 200,
                              help_text = "the name"];
    required manytoone site->Site:nodes = 2:1001 [db_index = True];
}

policy node_policy <
    ctx.user.is_admin
    | exists Privilege: Privilege.object_id = obj.id
    & *site_policy(site)
>
"""


def _spanned() -> ast.File:
    return parse_text(SPANNED, "spans.xproto")


def _where(node: object) -> tuple[int, int, int]:
    span: ast.Span = node.span  # type: ignore[attr-defined]
    assert span.file == "spans.xproto"
    return span.line, span.column, span.end_line


def test_spans_of_message_field_link_and_options() -> None:
    tree = _spanned()
    package, message, policy = tree.items
    assert isinstance(message, ast.Message) and isinstance(policy, ast.PolicyDef)
    assert _where(tree) == (1, 1, 13)
    assert _where(package) == (1, 1, 1)
    assert _where(message) == (2, 1, 7)
    assert message.bases is not None and _where(message.bases[0]) == (2, 28, 2)
    option, name, site = message.body
    assert _where(option) == (3, 5, 3)
    assert isinstance(option, ast.Option) and _where(option.value) == (3, 27, 3)
    assert _where(name) == (4, 5, 5)
    assert isinstance(name, ast.ScalarField)
    assert [_where(o) for o in name.options] == [(4, 31, 4), (5, 31, 5)]
    assert _where(name.options[1].value) == (5, 43, 5)
    assert isinstance(site, ast.LinkField)
    assert _where(site) == (6, 5, 6)
    assert _where(site.peer) == (6, 30, 6)
    assert _where(policy) == (9, 1, 13)


def test_spans_of_terms_inside_a_multi_line_policy_body() -> None:
    policy = _spanned().items[2]
    assert isinstance(policy, ast.PolicyDef)
    formula = policy.formula
    # | binds looser than &, and the quantifier stops at the &.
    assert isinstance(formula, ast.Connective) and formula.op == "|"
    assert isinstance(formula.left, ast.Term) and _where(formula.left)[:2] == (10, 5)
    conjunction = formula.right
    assert isinstance(conjunction, ast.Connective) and conjunction.op == "&"
    quantifier = conjunction.left
    assert isinstance(quantifier, ast.Quantifier) and _where(quantifier)[:2] == (11, 14)
    assert isinstance(quantifier.body, ast.Compare)
    assert _where(quantifier.body.right)[:2] == (11, 47)
    assert isinstance(conjunction.right, ast.PolicyCall)
    assert _where(conjunction.right)[:2] == (12, 8)  # the policy name


def test_policy_term_on_the_first_body_line_is_shifted_by_the_body_column() -> None:
    formula = parse_policy(" a = b", ast.Span("f", 7, 20))
    assert isinstance(formula, ast.Compare)
    assert (formula.left.span.line, formula.left.span.column) == (7, 21)


# --- FOL precedence ---------------------------------------------------------------------------


def _formula(body: str) -> ast.Formula:
    return parse_policy(body, ast.Span(FILE, 1, 1))


def _t(text: str) -> ast.Term:
    return ast.Term(text)


def test_quantifier_body_stops_at_conjunction() -> None:
    assert _formula("exists P: a = b & c = d") == ast.Connective(
        "&",
        ast.Quantifier("exists", "P", ast.Compare("=", _t("a"), _t("b"))),
        ast.Compare("=", _t("c"), _t("d")),
    )


def test_parenthesised_quantifier_body_takes_the_conjunction() -> None:
    formula = _formula("exists P: (a = b & c = d)")
    assert isinstance(formula, ast.Quantifier) and isinstance(formula.body, ast.Connective)


def test_not_binds_tighter_than_and() -> None:
    assert _formula("not a & b") == ast.Connective("&", ast.Not(_t("a")), _t("b"))


def test_implication_is_right_associative() -> None:
    assert _formula("a -> b -> c") == ast.Connective(
        "->", _t("a"), ast.Connective("->", _t("b"), _t("c"))
    )


def test_or_is_looser_than_and_and_left_associative() -> None:
    assert _formula("a | b & c | d") == ast.Connective(
        "|", ast.Connective("|", _t("a"), ast.Connective("&", _t("b"), _t("c"))), _t("d")
    )


@pytest.mark.parametrize("body", ["(a = b) = c", "a = (b)", "(a in b) in c", "not a = b = c"])
def test_equals_and_in_take_terms_only(body: str) -> None:
    with pytest.raises(XprotoError):
        _formula(body)


def test_terms_escapes_and_calls() -> None:
    assert _formula('{{ obj.x }} in "a" | *p(owner) = 3') == ast.Connective(
        "|",
        ast.Compare("in", ast.PythonEscape("obj.x"), _t('"a"')),
        ast.Compare("=", ast.PolicyCall("p", "owner"), _t("3")),
    )


# --- the grammars themselves ------------------------------------------------------------------


# A text each grammar accepts and one it rejects, for Lark and for our run time alike.
GRAMMAR_SAMPLES = {
    "xproto.lark": (
        "message A {\n  required string x = 2 [max_length = 3];\n}\n",
        "message A {\n  required string = 2;\n}\n",
    ),
    "policy.lark": ('{{ obj.x }} in "a" | *p(owner) = 3', "obj.x in in"),
}


def _ours(grammar: str, text: str) -> object:
    if grammar == "xproto.lark":
        return parse_text(text, "sample.xproto")
    return parse_policy(text, ast.Span(FILE, 1, 1))


@pytest.mark.parametrize("grammar", sorted(GRAMMAR_SAMPLES))
def test_grammar_builds_with_lark_strict_mode_and_agrees_with_our_parser(grammar: str) -> None:
    # strict=True makes Lark prove there are no shift/reduce or terminal collisions (it raises).
    lark = build_lark(grammar, strict=True)
    good, bad = GRAMMAR_SAMPLES[grammar]
    lark.parse(good)
    _ours(grammar, good)
    with pytest.raises(UnexpectedInput):
        lark.parse(bad)
    with pytest.raises(XprotoError):
        _ours(grammar, bad)


def test_line_comment_at_end_of_file_without_newline_is_ignored() -> None:
    # Regression: the fast lexer used to give the skipped "//" back as two '/' tokens.
    tree = parse_text('message A {\n  required string x = 2 [max_length = 3];\n}\n\n//', "eof.xproto")
    assert [m.name for m in tree.messages] == ["A"]
