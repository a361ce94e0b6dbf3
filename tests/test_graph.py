"""`xsgen graph`: the model dependency graph as DOT, Mermaid and SVG, links labelled with fields."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from conftest import CORE_XPROTO, IN_CI, ROOT, run_cli
from xprotogen.loader import load_schema
from xprotogen.targets.deps import model_deps
from xprotogen.targets.graph import build_graph, render_dot, render_mermaid

CORE = CORE_XPROTO
HELLO = ROOT / "examples" / "hello" / "hello.xproto"


def xsgen(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("xprotogen", "graph", *args)


def test_dot_for_core_has_a_labelled_edge_per_model_deps_link() -> None:
    result = xsgen(str(CORE))
    assert result.returncode == 0, result.stderr
    deps = model_deps(load_schema([CORE]))
    edges = re.findall(r'^    "(\w+)" -> "(\w+)" \[label="(\w+)"\];$', result.stdout, re.M)
    assert edges == [(m, peer, field) for m, links in deps.items() for peer, field, _ in links]
    assert ("Slice", "Site", "site") in edges and ("ServiceInstance", "Service", "owner") in edges
    assert result.stdout.startswith("digraph model_deps {\n") and result.stdout.endswith("}\n")


def test_dot_declares_every_model_even_without_links() -> None:
    text = render_dot(build_graph(load_schema([CORE])))
    for model in model_deps(load_schema([CORE])):
        assert f'\n    "{model}";\n' in text


def test_mermaid_for_core_has_the_same_edges_with_field_labels(tmp_path: Path) -> None:
    out = tmp_path / "core.mmd"
    result = xsgen(str(CORE), "--format", "mermaid", "-o", str(out))
    assert result.returncode == 0 and result.stdout == "", result.stderr
    text = out.read_text()
    assert text.splitlines()[0] == "flowchart LR"
    names = dict(re.findall(r'^    (m\d+)\["(\w+)"\]$', text, re.M))
    edges = [
        (names[a], names[b], label)
        for a, label, b in re.findall(r'^    (m\d+) -->\|"(\w+)"\| (m\d+)$', text, re.M)
    ]
    graph = build_graph(load_schema([CORE]))
    assert edges == [(e.source, e.target, e.label) for e in graph.edges]
    assert ("Slice", "Site", "site") in edges


def test_mermaid_node_ids_never_collide_with_keywords() -> None:
    schema = load_schema([HELLO])
    text = render_mermaid(build_graph(schema))
    assert re.findall(r"^    (\S+)\[", text, re.M) == ["m0", "m1", "m2"]
    assert '    m2 -->|"country"| m1' in text


def _require_dot() -> None:
    if shutil.which("dot") is None:
        if IN_CI:
            pytest.fail("Graphviz's dot is missing (make test installs it)")
        pytest.skip("Graphviz's dot is not installed")


def test_svg_through_graphviz_draws_every_model_and_label() -> None:
    _require_dot()
    result = xsgen(str(CORE), "--format", "svg")
    assert result.returncode == 0, result.stderr
    root = ElementTree.fromstring(result.stdout)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"Slice", "Site", "site", "default_flavor"} <= texts


def test_svg_without_graphviz_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    # A PATH holding only the interpreter: no `dot` on it, whatever the machine has.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = dict(os.environ, PATH=str(bin_dir))
    result = subprocess.run(
        [sys.executable, "-m", "xprotogen", "graph", str(HELLO), "--format", "svg"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "dot" in result.stderr and "graphviz" in result.stderr


def test_an_unknown_format_is_a_usage_error() -> None:
    result = xsgen(str(HELLO), "--format", "png")
    assert result.returncode == 2 and "invalid choice: 'png'" in result.stderr
