"""Reading `default` options: one rule for the store, the ORM and the generated client."""

from __future__ import annotations

import pytest

from xprotogen import ast
from xprotogen.options import NOW, literal_default


def value(kind: ast.ValueKind, text: str) -> ast.Value:
    return ast.Value(kind, text)


@pytest.mark.parametrize(
    ("written", "kind", "expected"),
    [
        (value("string", '"hello"'), "text", "hello"),
        (value("number", "30"), "text", "30"),
        (value("number", "-1"), "int", -1),
        (value("string", '"5"'), "int", 5),
        (value("number", "3.3"), "int", None),
        (value("number", "3.3"), "float", 3.3),
        (value("name", "True"), "bool", True),
        (value("bool", "false"), "bool", False),
        (value("string", '"True"'), "bool", True),
        (value("string", '"yes"'), "bool", None),
        (value("name", "None"), "text", None),
        (value("name", "get_first_site"), "text", None),
        (value("string", '"now()"'), "date", NOW),
        (value("string", '"now()"'), "text", None),
        (value("string", '"{}"'), "text", "{}"),
        (None, "int", None),
    ],
)
def test_literal_default(written: ast.Value | None, kind: str, expected: object) -> None:
    assert literal_default(written, kind) == expected  # type: ignore[arg-type]
