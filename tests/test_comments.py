"""Comments in the AST: each one attached to the node it documents, with its span."""

from __future__ import annotations

import pytest

from xprotogen import ast
from xprotogen.loader import load_schema
from xprotogen.parser import parse_text
from xprotogen.targets.client import build_client

SOURCE = """\
// file header

// About A.
// Second line.
message A (B) {
    // before x
    required string x = 1 [max_length = 3, // on max_length
        // before help_text
        help_text = "see http://example.com/*x*/"]; // after x
    /* block
     * about y */
    optional int32 y = 2; /* one */ // two
    // closing of A
} // after A
enum E {
    V = 1; // after V
    option o = 2;
}
// end of file
"""


@pytest.fixture(scope="module")
def tree() -> ast.File:
    return parse_text(SOURCE, "c.xproto")


def _texts(comments: tuple[ast.Comment, ...]) -> list[str]:
    return [c.text for c in comments]


def test_each_comment_goes_to_the_node_it_documents(tree: ast.File) -> None:
    message, enum = tree.items
    assert isinstance(message, ast.Message) and isinstance(enum, ast.Enum)
    x, y = message.fields
    assert _texts(message.comments.leading) == ["// file header", "// About A.", "// Second line."]
    assert _texts(message.comments.trailing) == ["// after A"]
    assert _texts(message.comments.closing) == ["// closing of A"]
    assert _texts(x.comments.leading) == ["// before x"]
    assert _texts(x.comments.trailing) == ["// after x"]
    assert _texts(x.options[0].comments.trailing) == ["// on max_length"]
    assert _texts(x.options[1].comments.leading) == ["// before help_text"]
    assert _texts(y.comments.leading) == ["/* block\n     * about y */"]
    assert _texts(y.comments.trailing) == ["/* one */", "// two"]
    assert _texts(enum.values[0].comments.trailing) == ["// after V"]
    assert _texts(tree.comments.closing) == ["// end of file"]


def test_comment_markers_inside_strings_are_text(tree: ast.File) -> None:
    message = tree.items[0]
    assert isinstance(message, ast.Message)
    assert message.fields[0].options[1].value.unquoted == "see http://example.com/*x*/"


def test_comments_carry_their_spans(tree: ast.File) -> None:
    message = tree.items[0]
    assert isinstance(message, ast.Message)
    y = message.fields[1]
    block = y.comments.leading[0]
    assert (block.span.line, block.span.column, block.span.end_line) == (10, 5, 11)
    after = y.comments.trailing[1]
    assert str(after.span) == "c.xproto:12:37"


def test_comments_take_part_in_equality() -> None:
    assert parse_text("message A {}\n") != parse_text("// doc\nmessage A {}\n")
    assert parse_text("// doc\nmessage A {}\n") == parse_text("\n\n// doc\nmessage   A{ }")


def test_doc_comment_is_the_block_right_above() -> None:
    schema_text = "// not this\n\n/** The world.\n * All of it. */\nmessage World {}\n"
    message = parse_text(schema_text).items[0]
    assert isinstance(message, ast.Message)
    assert ast.doc_comment(message.comments, message.span) == "The world. All of it."


def test_generated_client_docstring_comes_from_the_comment(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "doc.xproto"
    path.write_text(
        "/* A place\n   to live. */\nmessage Home {\n    required string name = 1;\n}\n"
    )
    (home,) = build_client(load_schema([path]))
    assert home.doc == '"""A place to live."""'
