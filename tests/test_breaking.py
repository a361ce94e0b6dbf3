"""`xsgen breaking`: each rule fires on the edit it is about and stays quiet on its safe twin.

The corpus holds one version of each file, so pairs are made by editing corpus files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given

from conftest import corpus_file, corpus_names, run_cli
from test_properties import SETTINGS, files
from xprotogen.breaking import RULES, find_breaking_changes, select_rules
from xprotogen.fmt import format_text
from xprotogen.parser import parse_text
from xprotogen.revisions import schema_of
from xprotogen.schema import build_schema

SES = "simpleexampleservice"
NEW_LINK_ON_COLOR = (
    "     required string html_code = 2 [",
    "     optional manytoone image->EmbeddedImageNew:colors = 3:1003;\n     required string html_code = 2 [",
)
TENANT_SECRET = 'optional string tenant_secret = 4 [\n         help_text = "Tenant Secret to place in a file",\n         text = True];'
IMAGE_LINK = (
    "     optional manytoone serviceinstance->SimpleExampleServiceInstance:embedded_images = 3:1001 [\n"
    '         help_text = "ServiceInstance that represents the web page where this embedded image should be placed",\n'
    "         db_index = True];\n"
)

# rule, corpus file, [(old text, new text), ...]: the edit that breaks.
BREAKING = [
    ("field-number-changed", SES, [("tenant_message = 1 [", "tenant_message = 5 [")]),
    ("field-number-reused", SES, [(TENANT_SECRET, "optional string note = 4;")]),
    (
        "field-type-changed",
        SES,
        [("optional string tenant_secret", "optional int32 tenant_secret")],
    ),
    (
        "field-cardinality-changed",
        SES,
        [("optional string tenant_secret", "repeated string tenant_secret")],
    ),
    (
        "field-cardinality-changed",
        SES,
        [("optional manytoone foreground_color", "optional manytomany foreground_color")],
    ),
    ("field-removed", SES, [(TENANT_SECRET, "")]),
    ("model-removed", SES, [("message EmbeddedImageNew", "message EmbeddedImageRenamed")]),
    (
        "link-target-changed",
        SES,
        [("foreground_color->ColorNew", "foreground_color->EmbeddedImageNew")],
    ),
    ("link-reverse-changed", SES, [(":serviceinstance_foreground_colors = 2", ":fg_colors = 2")]),
    (
        "reverse-id-changed",
        SES,
        [
            (
                "serviceinstance_foreground_colors = 2:1001",
                "serviceinstance_foreground_colors = 2:1005",
            )
        ],
    ),
    (
        "required-without-default",
        SES,
        [("optional string tenant_secret", "required string tenant_secret")],
    ),
    (
        "required-without-default",
        SES,
        [
            (
                "     required string html_code",
                "     required string code = 9;\n     required string html_code",
            )
        ],
    ),
    (
        "max-length-shrunk",
        SES,
        [
            (
                '"Name for this color",\n         max_length = 256',
                '"Name for this color",\n         max_length = 128',
            )
        ],
    ),
    (
        "max-length-shrunk",
        SES,
        [
            (
                "text = True];\n}\n\n// Note: Named ColorNew",
                "text = True, max_length = 64];\n}\n\n// Note: Named ColorNew",
            )
        ],
    ),
    ("unique-added", SES, [('"Name for this color",', '"Name for this color", unique = True,')]),
    (
        "unique-added",
        SES,
        [('"Name for this color",', '"Name for this color", unique_with = "html_code",')],
    ),
    (
        "choices-removed",
        "core",
        [("('retrieved', 'retrieved'), ('sent', 'sent'), ", "('retrieved', 'retrieved'), ")],
    ),
    ("deps-edge-added", SES, [NEW_LINK_ON_COLOR]),
    (
        "deps-edge-reversed",
        SES,
        [
            (IMAGE_LINK, ""),
            (
                "     optional string tenant_secret",
                "     optional manytoone image->EmbeddedImageNew:instances = 5:1003;\n     optional string tenant_secret",
            ),
        ],
    ),
    ("base-changed", SES, [("message ColorNew (XOSBase){", "message ColorNew (Service){")]),
    (
        "app-label-changed",
        SES,
        [('option app_label = "simpleexampleservice";', 'option app_label = "ses";')],
    ),
]

# rule, corpus file, edits: a change near the same spot that this rule must let through.
SAFE = [
    ("field-number-changed", SES, [('"Tenant Message to Display"', '"The tenant message"')]),
    (
        "field-number-reused",
        SES,
        [
            (
                "         text = True];\n}\n\n// Note: Named EmbeddedImageNew",
                "         text = True];\n     optional string note = 5;\n}\n\n// Note: Named EmbeddedImageNew",
            )
        ],
    ),
    (
        "field-type-changed",
        SES,
        [("optional string tenant_secret", "optional string  tenant_secret")],
    ),
    (
        "field-cardinality-changed",
        SES,
        [
            (
                "optional string tenant_secret",
                'required string tenant_secret = 4 [default = ""];\n     optional string unused',
            )
        ],
    ),
    (
        "field-removed",
        SES,
        [
            (
                "message ColorNew (XOSBase){",
                "message ColorNew (XOSBase){\n     optional string shade = 3;",
            )
        ],
    ),
    (
        "model-removed",
        SES,
        [
            (
                "// Note: Named EmbeddedImageNew",
                "message Brand (XOSBase) {\n    optional string name = 1;\n}\n\n// Note",
            )
        ],
    ),
    (
        "link-target-changed",
        SES,
        [('"Foreground color to use in web page"', '"The foreground color"')],
    ),
    (
        "link-reverse-changed",
        SES,
        [
            (
                ":serviceinstance_foreground_colors = 2:1001 [",
                ":serviceinstance_foreground_colors = 2:1001 [gui_hidden = True, ",
            )
        ],
    ),
    (
        "reverse-id-changed",
        SES,
        [
            (
                "serviceinstance_foreground_colors = 2:1001",
                "serviceinstance_foreground_colors =   2 : 1001",
            )
        ],
    ),
    (
        "required-without-default",
        SES,
        [
            (
                "optional string tenant_secret = 4 [",
                'required string tenant_secret = 4 [default = "none", ',
            )
        ],
    ),
    (
        "required-without-default",
        SES,
        [
            (
                "     required string html_code",
                "     optional string code = 9;\n     required string html_code",
            )
        ],
    ),
    (
        "max-length-shrunk",
        SES,
        [
            (
                '"Name for this color",\n         max_length = 256',
                '"Name for this color",\n         max_length = 512',
            )
        ],
    ),
    (
        "unique-added",
        "core",
        [
            (
                'blank = False, unique = True, help_text="Name of this AddressPool"',
                'blank = False, help_text="Name of this AddressPool"',
            )
        ],
    ),
    (
        "choices-removed",
        "core",
        [("('inprogress', 'inprogress'))", "('inprogress', 'inprogress'), ('queued', 'queued'))")],
    ),
    (
        "deps-edge-added",
        SES,
        [
            (
                "// Note: Named EmbeddedImageNew",
                "message Palette (XOSBase) {\n    optional manytoone color->ColorNew:palettes = 1:1001;\n}\n\n// Note",
            )
        ],
    ),
    ("deps-edge-reversed", SES, [NEW_LINK_ON_COLOR]),
    ("base-changed", SES, [("message ColorNew (XOSBase){", "message ColorNew (XOSBase) {")]),
    ("app-label-changed", SES, [('option name = "simpleexampleservice";', 'option name = "ses";')]),
]


def _edited(name: str, edits: list[tuple[str, str]]) -> tuple[str, str]:
    text = corpus_file(name).read_text(encoding="utf-8")
    new = text
    for before, after in edits:
        assert before in new, f"edit does not apply: {before!r}"
        new = new.replace(before, after, 1)
    assert new != text
    return text, new


def _rules_found(name: str, edits: list[tuple[str, str]]) -> list[str]:
    old, new = _edited(name, edits)
    findings = find_breaking_changes(
        schema_of([(f"old/{name}.xproto", old)]), schema_of([(f"new/{name}.xproto", new)])
    )
    return [d.rule for d in findings]


def test_every_rule_has_a_breaking_and_a_safe_case() -> None:
    assert {rule for rule, _, _ in BREAKING} == set(RULES)
    assert {rule for rule, _, _ in SAFE} == set(RULES)


@pytest.mark.parametrize(
    ("rule", "name", "edits"), BREAKING, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(BREAKING)]
)
def test_breaking_edit_is_reported(rule: str, name: str, edits: list[tuple[str, str]]) -> None:
    assert rule in _rules_found(name, edits)


@pytest.mark.parametrize(
    ("rule", "name", "edits"), SAFE, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(SAFE)]
)
def test_safe_edit_is_not_reported_by_the_rule(
    rule: str, name: str, edits: list[tuple[str, str]]
) -> None:
    assert rule not in _rules_found(name, edits)


def test_safe_changes_report_nothing_at_all() -> None:
    new_optional_field = (
        "         text = True];\n}\n\n// Note: Named EmbeddedImageNew",
        "         text = True];\n     optional string note = 5;\n}\n\n// Note: Named EmbeddedImageNew",
    )
    new_model = (
        "// Note: Named EmbeddedImageNew",
        "message Brand (XOSBase) {\n    optional string name = 1;\n}\n\n// Note",
    )
    help_text = ('"Tenant Message to Display"', '"The tenant message"')
    assert _rules_found(SES, [new_optional_field, new_model, help_text]) == []


def test_removed_enum_value_is_reported() -> None:
    old = "enum Color {\n    RED = 1;\n    GREEN = 2;\n}\n"
    new = "enum Color {\n    RED = 1;\n    BLUE = 3;\n}\n"
    (finding,) = find_breaking_changes(
        schema_of([("c.xproto", old)]), schema_of([("c.xproto", new)])
    )
    assert (finding.rule, finding.message) == (
        "choices-removed",
        "enum 'Color' no longer has the value 'GREEN'",
    )
    assert (
        find_breaking_changes(
            schema_of([("c.xproto", old)]),
            schema_of([("c.xproto", old + "enum Size {\n    S = 1;\n}\n")]),
        )
        == []
    )


@pytest.mark.parametrize("name", corpus_names())
def test_a_corpus_file_against_itself_formatted_breaks_nothing(name: str) -> None:
    path = corpus_file(name)
    text = path.read_text(encoding="utf-8")
    old = schema_of([(str(path), text)])
    assert find_breaking_changes(old, schema_of([(str(path), format_text(text, str(path)))])) == []


@SETTINGS
@given(files)
def test_any_schema_against_itself_breaks_nothing(tree: object) -> None:
    assert find_breaking_changes(build_schema([tree]), build_schema([tree])) == []  # type: ignore[list-item]


def test_rule_selection_takes_ids_and_families() -> None:
    assert select_rules(["sync"]) == {
        "deps-edge-added",
        "deps-edge-reversed",
        "base-changed",
        "app-label-changed",
    }
    assert select_rules(["wire"], ["field-removed"]) == {
        r for r, v in RULES.items() if v.family == "wire"
    } - {"field-removed"}
    with pytest.raises(ValueError, match="unknown rule or family 'nope'"):
        select_rules(["nope"])


# --- the command ------------------------------------------------------------------------------


def _pair(tmp_path: Path, edits: list[tuple[str, str]]) -> tuple[Path, Path]:
    old, new = _edited(SES, edits)
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / "ses.xproto").write_text(old, encoding="utf-8")
    (tmp_path / "new" / "ses.xproto").write_text(new, encoding="utf-8")
    return tmp_path / "old", tmp_path / "new"


def test_cli_prints_findings_like_lint_and_exits_1(tmp_path: Path) -> None:
    old, new = _pair(
        tmp_path,
        [
            ("tenant_message = 1 [", "tenant_message = 5 ["),
            ('option app_label = "simpleexampleservice";', 'option app_label = "ses";'),
        ],
    )
    result = run_cli("xprotogen", "breaking", str(old), str(new))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert (
        f"{new}/ses.xproto:45:6: error: field 'SimpleExampleServiceInstance.tenant_message' changed number from 1 to 5 (101 to 105 in the API) [field-number-changed]"
        in lines
    )
    assert all(line.startswith(f"{new}/ses.xproto:") and line.endswith("]") for line in lines)
    only = run_cli(
        "xprotogen", "breaking", str(old), str(new), "--rules", "wire", "--format", "json"
    )
    assert only.returncode == 1
    assert {d["rule"] for d in json.loads(only.stdout)} == {"field-number-changed"}
    none_left = run_cli(
        "xprotogen", "breaking", "--except", "field-number-changed,sync", str(old), str(new)
    )
    assert (none_left.returncode, none_left.stdout) == (0, "")


def test_cli_against_a_git_revision(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    text = corpus_file(SES).read_text(encoding="utf-8")
    (models / "ses.xproto").write_text(text, encoding="utf-8")
    (models / "gone.xproto").write_text(
        "message Gone {\n    optional string name = 1;\n}\n", encoding="utf-8"
    )
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], check=True)
    assert run_cli("xprotogen", "breaking", "--against", "main", str(models)).returncode == 0
    (models / "gone.xproto").unlink()
    (models / "ses.xproto").write_text(
        text.replace("tenant_message = 1 [", "tenant_message = 6 ["), encoding="utf-8"
    )
    result = run_cli("xprotogen", "breaking", "--against", "main", str(models))
    assert result.returncode == 1, result.stderr
    assert (
        "main:models/gone.xproto:1:1: error: model 'Gone' was removed [model-removed]"
        in result.stdout
    )
    assert (
        "changed number from 1 to 6 (101 to 106 in the API) [field-number-changed]" in result.stdout
    )
    bad = run_cli("xprotogen", "breaking", "--against", "nosuchbranch", str(models))
    assert bad.returncode == 2 and "unknown revision 'nosuchbranch'" in bad.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["only-one"], "give OLD and NEW"),
        (["a", "b", "--rules", "bogus"], "unknown rule or family 'bogus'"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str) -> None:
    result = run_cli("xprotogen", "breaking", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_cli_syntax_error_in_new_side_is_one_diagnostic(tmp_path: Path) -> None:
    old, new = _pair(tmp_path, [("tenant_message = 1 [", "tenant_message = [")])
    result = run_cli("xprotogen", "breaking", str(old), str(new))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{new}/ses.xproto:45:39: error: unexpected '['")
    assert "Traceback" not in result.stderr
