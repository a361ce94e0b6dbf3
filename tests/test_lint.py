"""`lint_schema`: xosgenx's validator findings on the corpus, and each of our own rules."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from conftest import CORE_XPROTO, CORPUS, corpus_file, corpus_names, require_shared
from xprotogen.diagnostics import Diagnostic
from xprotogen.lint import lint_schema
from xprotogen.lint.xosgenx_rules import FieldView, PREFIX, validate_field
from xprotogen.loader import load_schema
from xprotogen.schema import Schema

# --- golden: the xosgenx rules against what xosgenx 4.0.4 printed ----------------------------

_GOLDEN_LINE = re.compile(
    r"^\[(?P<severity>ERROR|WARNING)\] (?P<file>\S+):(?P<start>\d+)(?:-(?P<end>\d+))? "
    r"(?P<model>\w+)\.(?P<field>\S+) \(Type (?P<type>\S+)\): (?P<message>.*)$"
)


def _golden_findings(name: str) -> list[dict[str, str]]:
    text = (CORPUS / "xosgenx-lint" / f"{name}.txt").read_text()
    findings = []
    for line in text.splitlines():
        if line.strip():
            match = _GOLDEN_LINE.match(line)
            assert match, f"unreadable golden line: {line!r}"
            findings.append({key: value or "" for key, value in match.groupdict().items()})
    return findings


def _fields_by_line(schema: Schema) -> dict[int, tuple[str, str, bool]]:
    found: dict[int, tuple[str, str, bool]] = {}
    for model in schema.models:
        for field in model.own_fields:
            assert (
                field.span.line not in found
            ), "two fields on one line: the test cannot tell them apart"
            found[field.span.line] = (model.name, field.name, field.link is not None)
    return found


@pytest.mark.parametrize("name", corpus_names())
def test_xosgenx_rules_match_xosgenx_findings(name: str) -> None:
    schema = load_schema([corpus_file(name)])
    fields = _fields_by_line(schema)
    ours: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    our_lines: dict[tuple[str, str], int] = {}
    for diagnostic in lint_schema(schema):
        if not diagnostic.rule.startswith(PREFIX):
            continue
        model, field, _ = fields[diagnostic.span.line]
        ours[(model, field)].append((diagnostic.severity, diagnostic.message))
        our_lines[(model, field)] = diagnostic.span.line

    theirs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for finding in _golden_findings(name):
        key = (finding["model"], finding["field"])
        theirs[key].append((finding["severity"].lower(), finding["message"]))
        line, is_link = our_lines.get(key, 0), fields.get(our_lines.get(key, 0), ("", "", False))[2]
        start = int(finding["start"]) + 1
        end = int(finding["end"] or finding["start"]) + 1
        if is_link:  # xosgenx gives the span of the link's message
            assert start <= line <= end, (key, line, start, end)
        else:
            assert line == start, (key, line, start)

    assert dict(ours) == dict(theirs)


def test_corpus_has_findings_to_compare() -> None:
    # Guards the golden test against comparing empty lists everywhere.
    require_shared()
    counts = {name: len(_golden_findings(name)) for name in corpus_names()}
    assert sum(counts.values()) > 90
    assert counts["core"] == 0


# --- the xosgenx rules, case by case ------------------------------------------------------


def _lint(tmp_path: Path, text: str, name: str = "t.xproto") -> list[Diagnostic]:
    path = tmp_path / name
    path.write_text(text)
    return lint_schema(load_schema([path]))


def _messages(
    diagnostics: list[Diagnostic], rule_prefix: str = ""
) -> list[tuple[int, str, str, str]]:
    return [
        (d.span.line, d.severity, d.rule, d.message)
        for d in diagnostics
        if d.rule.startswith(rule_prefix)
    ]


def _view(type_: str = "string", modifier: str = "optional", **options: str) -> FieldView:
    return FieldView(type_, modifier, {**options, "modifier": modifier}, False)


def _found(view: FieldView) -> list[str]:
    return [f.message for f in validate_field(view)]


def test_plain_string_content_types_are_checked_and_quotes_are_shown() -> None:
    assert _found(_view(content_type='"email"')) == ['Content type "email" is not allowed']
    # A bare name is not the string "ip" for xosgenx.
    assert _found(_view(content_type="ip")) == ["Content type ip is not allowed"]
    assert _found(_view(content_type='"ip"')) == []


def test_date_strings_allow_auto_now_add_and_skip_length_checks() -> None:
    assert _found(_view(content_type='"date"', auto_now_add="True")) == []
    assert _found(_view(content_type='"date"', choices='"x"')) == [
        'Option choices="x" is not allowed'
    ]


def test_string_length_rules() -> None:
    assert _found(_view()) == ["String field should have a max_length or text=True"]
    assert _found(_view(text="True")) == []
    assert _found(_view(text="False")) == ["String field should have a max_length or text=True"]
    assert _found(_view(max_length="0")) == ["max_length should not be zero"]
    assert _found(_view(max_length='"10"')) == ["max_length must be a number"]
    assert _found(_view(max_length="1023")) == [
        "max_length of 1023 is close to suggested max_length of 1024"
    ]


@given(st.integers(min_value=1, max_value=2000))
def test_max_length_warning_exactly_when_just_off_a_suggested_size(length: int) -> None:
    findings = list(validate_field(_view(max_length=str(length))))
    near = [s for s in (256, 1024) if 0 < abs(s - length) < 3]
    assert [f.severity for f in findings] == ["warning"] * len(near)
    assert [f.message for f in findings] == [
        f"max_length of {length} is close to suggested max_length of {s}" for s in near
    ]


@given(
    st.sampled_from(["blank", "null", "db_index", "unique", "gui_hidden", "text", "tosca_key"]),
    st.text(min_size=1),
)
def test_boolean_options_accept_only_python_spellings(option: str, value: str) -> None:
    view = _view(max_length="10", **{option: value})
    complaint = f"Option `{option}` must be either True or False, but is '{value}'"
    assert (complaint in _found(view)) == (value not in ("True", "False"))


def test_modifier_consistency_and_rule_order_within_a_field() -> None:
    view = _view("string", "required", content_type='"bogus"', blank="True", foo='"x"')
    assert _found(view) == [
        'Content type "bogus" is not allowed',
        "Option `blank`=`True` is inconsistent with modifier `required`",
        'Option foo="x" is not allowed',
    ]
    assert _found(_view("bool", "optional", null="False")) == []
    assert _found(_view("bool", "optional", null="True")) == ["Option null=True is not allowed"]
    assert _found(_view("string", "repeated", max_length="3")) == [
        "Unknown modifier type 'repeated'"
    ]


def test_each_option_gets_not_allowed_before_not_boolean(tmp_path: Path) -> None:
    found = _lint(tmp_path, "message A { optional bool b = 2 [blank = yes, default = true]; }\n")
    assert [m for _, _, _, m in _messages(found, PREFIX)] == [
        "Option `blank`=`yes` is inconsistent with modifier `optional`",
        "Option default=true is not allowed",
        "Option blank=yes is not allowed",
        "Option `blank` must be either True or False, but is 'yes'",
    ]


def test_integer_blank_needs_null_and_unknown_types_are_errors() -> None:
    assert _found(_view("int32", blank="True", null="True")) == []
    assert _found(_view("uint32", "required", blank="True", null="False")) == [
        "Option `blank`=`True` is inconsistent with modifier `required`",
        "If blank is true then null must also be true",
    ]
    assert _found(_view("int64")) == ["Unknown field type int64"]
    assert _found(_view("Kind")) == ["Unknown field type Kind"]


def test_links_are_int32_fields_with_synthetic_options(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        "message B { required string name = 2 [max_length = 10]; }\n"
        "message A {\n"
        "  required manytoone b->B:as = 2 [max_length = 3];\n"
        "  optional onetoone c->B:cs = 3;\n"
        "  required manytomany d->B:ds = 4 [null = True, blank = True];\n"
        "}\n",
    )
    assert _messages(found, PREFIX) == [
        (3, "error", "xosgenx-option-not-allowed", "Option max_length=3 is not allowed"),
        (4, "error", "xosgenx-unknown-link-type", "Unknown link_type onetoone"),
        (
            5,
            "error",
            "xosgenx-modifier-inconsistent",
            "Option `blank`=`True` is inconsistent with modifier `required`",
        ),
        # xosgenx reports this even though it means to exempt many-to-many links: own rule id.
        (
            5,
            "error",
            "xosgenx-m2m-null-modifier",
            "Option `null`=`True` is inconsistent with modifier `required`",
        ),
    ]


def test_lines_point_at_the_field_itself(tmp_path: Path) -> None:
    found = _lint(tmp_path, "\n\nmessage A {\n  // c\n\n  required string s = 2;\n}\n")
    assert [(d.span.line, d.span.column) for d in found if d.rule.startswith(PREFIX)] == [(6, 3)]


# --- our own rules ----------------------------------------------------------------------------


def _rules(diagnostics: list[Diagnostic], rule: str) -> list[tuple[int, int, str, str]]:
    return [
        (d.span.line, d.span.column, d.severity, d.message) for d in diagnostics if d.rule == rule
    ]


def test_undefined_base_suggests_a_close_name_and_ignores_xos_mixins(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        "message Service { required string name = 2 [max_length = 9]; }\n"
        "message A (Servce) { }\n"
        "message B (Unrelated, PlModelMixIn, AttributeMixin) { }\n",
    )
    assert _rules(found, "undefined-base") == [
        (
            2,
            12,
            "error",
            "model 'A' derives from undefined model 'Servce'; did you mean 'Service'?",
        ),
        (
            3,
            12,
            "error",
            "model 'B' derives from undefined model 'Unrelated'; if another file defines it, list that file first",
        ),
    ]


def test_base_defined_in_an_earlier_file_is_not_reported(tmp_path: Path) -> None:
    (tmp_path / "core.xproto").write_text(
        "message XOSBase { required string name = 2 [max_length = 9]; }\n"
    )
    (tmp_path / "svc.xproto").write_text("message S (XOSBase) { }\n")
    found = lint_schema(load_schema([tmp_path / "core.xproto", tmp_path / "svc.xproto"]))
    assert _rules(found, "undefined-base") == []


def test_undefined_link_target_points_at_the_target_name(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        "message Slice { required string name = 2 [max_length = 9]; }\n"
        "message A { required manytoone s->Slic:as = 2; }\n",
    )
    assert _rules(found, "undefined-link-target") == [
        (2, 35, "error", "link 'A.s' points at undefined model 'Slic'; did you mean 'Slice'?")
    ]


def test_duplicate_model_is_reported_at_the_second(tmp_path: Path) -> None:
    found = _lint(tmp_path, "message A { }\nmessage B { }\nmessage A { }\n")
    path = tmp_path / "t.xproto"
    assert _rules(found, "duplicate-model") == [
        (3, 1, "error", f"model 'A' is already defined at {path}:1")
    ]


def test_duplicate_fields_own_inherited_and_from_two_bases(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        "message P { required string x = 2 [max_length = 9]; }\n"
        "message Q { required string x = 2 [max_length = 9]; }\n"
        "message A (P) {\n"
        "  required string y = 2 [max_length = 9];\n"
        "  required string y = 3 [max_length = 9];\n"
        "  required string x = 4 [max_length = 9];\n"
        "}\n"
        "message D (P, Q) { }\n"
        "message E (D) { }\n",
    )
    assert _rules(found, "duplicate-field") == [
        (5, 3, "error", "field 'y' is defined twice in model 'A' (first at line 4)"),
        (6, 3, "error", "field 'A.x' hides field 'x' inherited from 'P'"),
        # Reported where the clash arises, not again for E, which inherits it from D.
        (8, 1, "error", "model 'D' inherits field 'x' from both 'P' and 'Q'"),
    ]


def test_reverse_name_collisions_with_a_field_and_with_another_link(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        "message Site { required string users = 2 [max_length = 9]; }\n"
        "message User { required manytoone site->Site:users = 2:1001; }\n"
        "message Slice { required manytoone site->Site:slices = 2:1002; }\n"
        "message Node { required manytoone site->Site:slices = 2:1003; }\n"
        "message Ok { required manytoone site->Site:+ = 2; }\n",
    )
    assert _rules(found, "reverse-name-collision") == [
        (
            2,
            16,
            "error",
            "reverse name 'users' of link 'User.site' clashes with field 'Site.users'",
        ),
        (
            4,
            16,
            "error",
            f"reverse name 'slices' of link 'Node.site' is also the reverse name of link 'Slice.site' "
            f"({tmp_path / 't.xproto'}:3) on 'Site'",
        ),
    ]


def test_reverse_name_clash_through_inheritance_is_reported_once(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        "message Base { required manytoone owner->Owner:things = 2:1001; }\n"
        "message Owner { required string things = 2 [max_length = 9]; }\n"
        "message Sub (Owner) { }\n",
    )
    assert len(_rules(found, "reverse-name-collision")) == 1


def test_unknown_options_at_every_level_with_suggestions(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        'option app_lable = "x";\n'
        'option ceilometer_foo = "kept for legacy files";\n'
        "message A {\n"
        '  option verbose_nam = "A";\n'
        '  required string s = 2 [max_lenght = 9, help_text = "ok"];\n'
        "}\n",
    )
    assert _rules(found, "unknown-option") == [
        (1, 1, "warning", "unknown file option 'app_lable'; did you mean 'app_label'?"),
        (4, 3, "warning", "unknown message option 'verbose_nam'; did you mean 'verbose_name'?"),
        (
            5,
            26,
            "warning",
            "unknown field option 'max_lenght' on field 's'; did you mean 'max_length'?",
        ),
    ]


def test_number_or_lowercase_boolean_in_file_and_message_options(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        "option name = 3;\n"
        'option app_label = "ok";\n'
        "message A { option abstract = true; option skip_init = True; }\n",
    )
    assert _rules(found, "option-value-kind") == [
        (
            1,
            15,
            "error",
            "file option 'name' has the number 3 as its value, which xosgenx cannot read; "
            'write it as a string: name = "3"',
        ),
        (
            3,
            31,
            "error",
            "message option 'abstract' has 'true' as its value, which xosgenx cannot read; "
            'write it as a string or a bare name: abstract = "True" or abstract = True',
        ),
    ]


def test_undefined_policies_named_by_models_fields_and_validators(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        "policy site_policy < True >\n"
        "message A::site_polcy {\n"
        '  option validators = "site_policy:ok, missing:not ok";\n'
        "  required string s::nope = 2 [max_length = 9];\n"
        "}\n"
        "policy bad < *gone(x) >\n",
    )
    assert _rules(found, "undefined-policy") == [
        (
            2,
            1,
            "error",
            "model 'A' uses undefined policy 'site_polcy'; did you mean 'site_policy'?",
        ),
        (3, 23, "error", "option validators of model 'A' names undefined policy 'missing'"),
        (4, 3, "error", "field 'A.s' uses undefined policy 'nope'"),
        (6, 15, "error", "policy 'bad' calls undefined policy 'gone'"),
    ]


def test_schema_builder_problems_are_reported(tmp_path: Path) -> None:
    found = _lint(
        tmp_path,
        "message A (B) { required string s = 100 [max_length = 9]; }\n"
        "message B (A) { required manytoone a->A:bs = 2:999; }\n"
        "message C () { }\n",
    )
    rules = {d.rule for d in found}
    assert {"field-number-range", "inheritance-cycle", "reverse-id-range", "empty-bases"} <= rules


def test_field_one_clashes_with_id_only_when_the_bases_are_known(tmp_path: Path) -> None:
    # With its base missing, a model's numbering is unknown; the missing base is the finding.
    found = _lint(tmp_path, "message S (XOSBase) { required string s = 1 [max_length = 9]; }\n")
    assert [d.rule for d in found] == ["undefined-base"]
    found = _lint(tmp_path, "message R { required string s = 1 [max_length = 9]; }\n")
    assert [d.rule for d in found] == ["duplicate-field-number"]


def test_core_is_clean_and_services_with_core_get_no_undefined_warnings() -> None:
    assert lint_schema(load_schema([CORE_XPROTO])) == []
    found = lint_schema(load_schema([CORE_XPROTO, corpus_file("volt")]))
    assert [d for d in found if not d.rule.startswith(PREFIX)] == []


def test_findings_are_sorted_by_argument_order_then_position(tmp_path: Path) -> None:
    (tmp_path / "b.xproto").write_text("message B {\n  required string s = 2;\n}\n")
    (tmp_path / "a.xproto").write_text(
        "message A {\n\n  required string s = 2; required string t = 3;\n}\n"
    )
    found = lint_schema(load_schema([tmp_path / "b.xproto", tmp_path / "a.xproto"]))
    assert [(Path(d.span.file).name, d.span.line, d.span.column) for d in found] == [
        ("b.xproto", 2, 3),
        ("a.xproto", 3, 3),
        ("a.xproto", 3, 26),
    ]
