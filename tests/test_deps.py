"""`xsgen deps` against the model-deps that xosgenx 4.0.4 produced for every corpus file."""

from __future__ import annotations

import json

import pytest

from conftest import CORE_XPROTO, CORPUS, corpus_file, corpus_names, require_shared, run_cli
from xprotogen.loader import load_schema
from xprotogen.targets.deps import model_deps, render_model_deps

SERVICES = [n for n in corpus_names() if n != "core"]


def _golden(folder: str, name: str) -> object:
    require_shared()
    return json.loads((CORPUS / folder / f"{name}.json").read_text())


def _same_json(got: object, expected: object) -> bool:
    # Key order and list order are significant: compare the canonical text.
    return json.dumps(got) == json.dumps(expected)


@pytest.mark.parametrize("name", corpus_names())
def test_deps_alone_matches_xosgenx(name: str) -> None:
    got = model_deps(load_schema([corpus_file(name)]))
    assert _same_json(got, _golden("model-deps", name))


@pytest.mark.parametrize("name", SERVICES)
def test_deps_with_core_first_matches_xosgenx(name: str) -> None:
    got = model_deps(load_schema([CORE_XPROTO, corpus_file(name)]))
    assert _same_json(got, _golden("model-deps-with-core", name))


def test_rendered_deps_are_valid_json_with_four_space_indent() -> None:
    text = render_model_deps(load_schema([CORE_XPROTO]))
    assert text.startswith('{\n    "User": [\n        [\n            "Site",')
    assert text.endswith("}\n")
    assert json.loads(text) == _golden("model-deps", "core")


def test_deps_cli_output_is_byte_identical_across_runs() -> None:
    runs = [run_cli("xprotogen", "deps", str(CORE_XPROTO), str(corpus_file("volt"))) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stderr == ""


def test_controller_models_link_back_with_reversed_ports(tmp_path) -> None:
    source = tmp_path / "ctl.xproto"
    source.write_text(
        "message Controller { required string name = 2 [max_length = 10]; }\n"
        "message Image { required string name = 2 [max_length = 10]; }\n"
        "message ControllerImages {\n"
        "  required manytoone image->Image:controllerimages = 2:1001;\n"
        "  required manytoone controller->Controller:controllerimages = 3:1002;\n"
        "}\n"
        "message Site { required string name = 2 [max_length = 10]; }\n"
    )
    deps = model_deps(load_schema([source]))
    # Found through the plural: "Controller" + "Images". Valid JSON even where xosgenx's is not.
    assert deps["Image"] == [["ControllerImages", "controllerimages", "image"]]
    assert "Controller" not in deps
    assert deps["Site"] == []
