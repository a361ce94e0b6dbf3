"""`xsgen fmt`: one canonical layout, every comment kept, the model unchanged."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import corpus_file, corpus_names, run_cli
from test_properties import SETTINGS, files
from xprotogen import ast
from xprotogen.diagnostics import XprotoError
from xprotogen.fmt import format_text
from xprotogen.parser import parse_text
from xprotogen.printer import print_file
from xprotogen.schema import build_schema
from xprotogen.targets.client import build_client, render_client
from xprotogen.targets.deps import render_model_deps
from xprotogen.targets.proto import build_proto_api, render_proto_files

CORE = corpus_file("core")


def _outputs(paths_and_texts: list[tuple[str, str]]) -> dict[str, Any]:
    """What `xsgen deps`, `proto` and `client` make of these files (or the error they give)."""
    schema = build_schema([parse_text(text, path) for path, text in paths_and_texts])
    results: dict[str, Any] = {"deps": render_model_deps(schema)}
    # The client's classes, not its text: black takes seconds per corpus file, and the text is
    # a pure function of them (one test below compares the text itself).
    for name, make in (
        ("proto", lambda: render_proto_files(build_proto_api(schema))),
        ("client", lambda: build_client(schema)),
    ):
        try:
            results[name] = make()
        except XprotoError as exc:
            results[name] = [str(d) for d in exc.diagnostics]
    return results


@pytest.fixture(scope="module")
def formatted_core() -> str:
    return format_text(CORE.read_text(encoding="utf-8"), str(CORE))


@pytest.mark.parametrize("name", corpus_names())
def test_formatting_a_corpus_file_keeps_its_model_comments_and_outputs(
    name: str, formatted_core: str
) -> None:
    path = corpus_file(name)
    text = path.read_text(encoding="utf-8")
    formatted = format_text(text, str(path))
    assert format_text(formatted, str(path)) == formatted, "not idempotent"
    assert parse_text(formatted, str(path)) == parse_text(text, str(path))
    comments = [line.strip() for line in text.splitlines() if line.strip().startswith("//")]
    for comment in comments:
        assert comment in formatted
    core_text = CORE.read_text(encoding="utf-8")
    before = [(str(CORE), core_text)] + ([(str(path), text)] if name != "core" else [])
    after = [(str(CORE), formatted_core)] + ([(str(path), formatted)] if name != "core" else [])
    assert _outputs(after) == _outputs(before)


# --- the layout -------------------------------------------------------------------------------

MESSY = """\
option app_label="hello";
// A world.
message World(XOSBase){
  required string name=1[max_length=64,help_text="Its name"]; // the key
    /* closing */
}
// Countries
/* belong to worlds */

message Country (XOSBase) {
    required manytoone world -> World : countries = 2 : 1001 [help_text = "The world it is in", db_index = True, null = False, blank = False];
    optional string code = 3 [
        // ISO 3166
        max_length = 2, help_text = "two letters"]; // short
}
"""

CANONICAL = """\
option app_label = "hello";

// A world.
message World (XOSBase) {
    required string name = 1 [max_length = 64, help_text = "Its name"]; // the key
    /* closing */
}

// Countries
/* belong to worlds */

message Country (XOSBase) {
    required manytoone world->World:countries = 2:1001 [
        help_text = "The world it is in",
        db_index = True,
        null = False,
        blank = False];
    optional string code = 3 [
        // ISO 3166
        max_length = 2,
        help_text = "two letters"]; // short
}
"""


def test_messy_file_gets_the_canonical_layout() -> None:
    assert format_text(MESSY) == CANONICAL


def test_doc_comment_stays_attached_and_feeds_the_model() -> None:
    schema = build_schema([parse_text(format_text(MESSY), "m.xproto")])
    assert schema.model("World").doc == "A world."
    assert schema.model("Country").doc is None  # a blank line parts the comments from it


def test_client_text_is_byte_identical_after_formatting() -> None:
    text = "// A small thing.\nmessage Thing{required string name=1[max_length=10];}\n"
    before = render_client(build_schema([parse_text(text, "t.xproto")]))
    after = render_client(build_schema([parse_text(format_text(text), "t.xproto")]))
    assert after == before
    assert "A small thing." in after


def test_comment_after_last_option_stays_inside_the_brackets() -> None:
    text = "message A {\n    required int32 x = 1 [a = 1, b = 2 // why b\n    ];\n}\n"
    formatted = format_text(text)
    assert "b = 2 // why b\n    ];" in formatted
    assert parse_text(formatted) == parse_text(text)


def test_blank_lines_between_fields_are_kept_and_collapsed() -> None:
    text = "message A {\n    required int32 x = 1;\n\n\n\n    required int32 y = 2;\n    required int32 z = 3;\n}\n"
    assert (
        format_text(text)
        == "message A {\n    required int32 x = 1;\n\n    required int32 y = 2;\n    required int32 z = 3;\n}\n"
    )


def test_policy_body_is_kept_as_written() -> None:
    text = "policy p <\n    ctx.user.is_admin\n    | obj.x = 1 >\n"
    assert format_text(text) == text


# --- properties -----------------------------------------------------------------------------

line_comments = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12).map(
    lambda s: f"// {s}" if s else "//"
)
block_comments = st.lists(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10).filter(
        lambda s: "*/" not in s and not s.endswith("*")
    ),
    min_size=1,
    max_size=3,
).map(lambda lines: "/* " + "\n".join(lines) + " */")
comment_lists = st.lists(st.one_of(line_comments, block_comments).map(ast.Comment), max_size=2).map(
    tuple
)
# A `//` comment runs to the end of its line, so only the last comment after a node can be one.
trailing_lists = st.tuples(
    st.lists(block_comments.map(ast.Comment), max_size=1),
    st.lists(line_comments.map(ast.Comment), max_size=1),
).map(lambda parts: (*parts[0], *parts[1]))


def _fields(node: Any) -> dict[str, Any]:
    names = [
        n
        for cls in reversed(type(node).__mro__)
        for n in getattr(cls, "__annotations__", {})
        if n != "span"
    ]
    return {n: getattr(node, n) for n in dict.fromkeys(names)}


@st.composite
def commented(draw: st.DrawFn, node: Any) -> Any:
    """`node` rebuilt with comments drawn for it and for everything inside it."""
    if isinstance(node, tuple):
        return tuple(draw(commented(child)) for child in node)
    if not hasattr(node, "comments"):
        return node
    values = _fields(node)
    for name in ("items", "body", "values", "options", "rpcs"):
        if name in values:
            values[name] = draw(commented(values[name]))
    block = isinstance(node, (ast.File, ast.Message, ast.Extend, ast.Enum, ast.Service))
    leading = () if isinstance(node, ast.File) else draw(comment_lists)
    trailing = () if isinstance(node, ast.File) else draw(trailing_lists)
    closing = draw(comment_lists) if block else ()
    values["comments"] = ast.Comments(leading, trailing, closing)
    return type(node)(**values)


@settings(SETTINGS, max_examples=100)
@given(files.flatmap(commented))
def test_fmt_is_idempotent_and_keeps_the_tree_with_its_comments(tree: ast.File) -> None:
    text = print_file(tree)
    parsed = parse_text(text, "gen.xproto")
    assert parsed == tree, text
    assert print_file(parsed) == text


# --- the command ------------------------------------------------------------------------------


def _write(folder: Path, name: str, text: str, mode: int = 0o640) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_check_lists_unformatted_files_and_writes_nothing(tmp_path: Path) -> None:
    messy = _write(tmp_path, "messy.xproto", MESSY)
    clean = _write(tmp_path, "clean.xproto", CANONICAL)
    result = run_cli("xprotogen", "fmt", "--check", str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert result.stdout == f"{messy}: not formatted\n"
    assert messy.read_text(encoding="utf-8") == MESSY
    assert run_cli("xprotogen", "fmt", "--check", str(clean)).returncode == 0


def test_diff_shows_the_change_and_writes_nothing(tmp_path: Path) -> None:
    messy = _write(tmp_path, "messy.xproto", MESSY)
    result = run_cli("xprotogen", "fmt", "--diff", str(messy))
    assert result.returncode == 0
    assert "\n-message World(XOSBase){\n" in result.stdout
    assert "\n+message World (XOSBase) {\n" in result.stdout
    assert messy.read_text(encoding="utf-8") == MESSY


def test_fmt_rewrites_in_place_keeping_permissions(tmp_path: Path) -> None:
    messy = _write(tmp_path, "messy.xproto", MESSY, mode=0o604)
    result = run_cli("xprotogen", "fmt", str(messy))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"formatted {messy}\n"
    assert messy.read_text(encoding="utf-8") == CANONICAL
    assert stat.S_IMODE(messy.stat().st_mode) == 0o604
    assert [p.name for p in tmp_path.iterdir()] == ["messy.xproto"]  # no temporary file left
    again = run_cli("xprotogen", "fmt", str(messy))
    assert again.returncode == 0 and again.stdout == ""


def test_broken_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    broken = _write(tmp_path, "broken.xproto", "message A {\n    required string = 1;\n}\n")
    messy = _write(tmp_path, "messy.xproto", MESSY)
    result = run_cli("xprotogen", "fmt", str(broken), str(messy))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{broken}:2:21: error: unexpected '='")
    assert broken.read_text(encoding="utf-8") == "message A {\n    required string = 1;\n}\n"
    assert messy.read_text(encoding="utf-8") == CANONICAL


def test_missing_file_and_empty_folder_fail_with_one_line(tmp_path: Path) -> None:
    missing = run_cli("xprotogen", "fmt", str(tmp_path / "nope.xproto"))
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"{tmp_path / 'nope.xproto'}: error: no such file [input]"
    empty = run_cli("xprotogen", "fmt", str(tmp_path))
    assert empty.returncode == 2
    assert empty.stderr.strip() == "xsgen fmt: error: no xproto files found"
