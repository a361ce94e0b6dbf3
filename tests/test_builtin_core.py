"""The built-in core models: the same facts as XOS's core.xproto, read whenever a file needs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CORE_XPROTO, CORPUS, corpus_file, corpus_names, require_shared, run_cli
from xprotogen.core_models import builtin_core_text, needs_builtin_core
from xprotogen.loader import load_files, load_schema
from xprotogen.parser import parse_text
from xprotogen.schema import Schema
from xprotogen.targets.deps import render_model_deps

WITH_CORE_GOLDENS = sorted(p.stem for p in (CORPUS / "model-deps-with-core").glob("*.json"))
# Options that are prose, ours to write; every other option is a fact carried over.
PROSE_OPTIONS = frozenset({"help_text", "description"})


def _facts(schema: Schema) -> list[object]:
    """Everything about the models except their prose, in order."""
    facts: list[object] = [sorted(schema.policies)]
    for model in schema.models:
        options = {k: v.text for k, v in model.options.items() if k not in PROSE_OPTIONS}
        bases = [ref.text for ref in model.base_refs]
        facts.append((model.name, model.package, model.policy, bases, options))
        for f in model.fields:
            link = f.link
            facts.append(
                (
                    model.name,
                    f.name,
                    f.type,
                    f.modifier,
                    f.number,
                    {k: v.text for k, v in f.options.items() if k not in PROSE_OPTIONS},
                    link
                    and (
                        link.link_type,
                        link.peer_name,
                        link.through_ref and link.through_ref.text,
                        link.reverse_name,
                        link.reverse_id,
                    ),
                )
            )
        facts.extend((model.name, r.name, r.number) for r in model.reverse_links)
    return facts


def test_the_builtin_core_carries_the_facts_of_xos_core() -> None:
    ours = load_schema([CORE_XPROTO])
    theirs = load_schema([corpus_file("core")])
    assert ours.problems == []
    # Compared as plain values: a failing comparison of schemas would repr their cycles.
    our_facts, their_facts = _facts(ours), _facts(theirs)
    assert our_facts == their_facts
    assert {p: ours.policies[p].formula for p in ours.policies} == {
        p: theirs.policies[p].formula for p in theirs.policies
    }


def test_the_builtin_core_help_texts_are_our_own() -> None:
    ours = load_schema([CORE_XPROTO])
    theirs = load_schema([corpus_file("core")])
    their_texts = {
        (m.name, f.name): f.help_text for m in theirs.models for f in m.own_fields if f.help_text
    }
    same = [
        key
        for m in ours.models
        for f in m.own_fields
        if their_texts.get(key := (m.name, f.name)) == f.help_text
    ]
    assert same == []
    # Every field says what it is for: the generated docstrings are built from these.
    assert [(m.name, f.name) for m in ours.models for f in m.own_fields if not f.help_text] == []
    assert [m.name for m in ours.models if not m.description] == []


@pytest.mark.parametrize("name", WITH_CORE_GOLDENS or corpus_names())
def test_deps_with_core_matches_xosgenx_on_core_and_the_file(name: str) -> None:
    require_shared()
    golden = json.loads((CORPUS / "model-deps-with-core" / f"{name}.json").read_text())
    done = run_cli("xprotogen", "deps", "--with-core", str(corpus_file(name)))
    assert (done.returncode, done.stderr) == (0, "")
    # Key order and list order are significant, as in xosgenx's output.
    assert list(json.loads(done.stdout).items()) == list(golden.items())


def test_every_with_core_golden_is_tested() -> None:
    require_shared()
    assert len(WITH_CORE_GOLDENS) == 31


def test_xsgen_core_prints_the_builtin_file(tmp_path: Path) -> None:
    done = run_cli("xprotogen", "core")
    assert (done.returncode, done.stderr, done.stdout) == (0, "", builtin_core_text())
    out = tmp_path / "core.xproto"
    assert run_cli("xprotogen", "core", "-o", str(out)).returncode == 0
    assert out.read_text() == builtin_core_text()


SERVICE = """option app_label = "shop";

message Shop (Service) {
    optional string motto = 1 [max_length = 80];
}
message Order (ServiceInstance) {
    required manytoone site->Site:orders = 1:1100;
}
"""


def test_a_service_file_alone_reads_the_builtin_core_first(tmp_path: Path) -> None:
    service = tmp_path / "shop.xproto"
    service.write_text(SERVICE)
    alone = load_schema([service], core="auto")
    listed = load_schema([CORE_XPROTO, service])
    alone_deps, listed_deps = render_model_deps(alone), render_model_deps(listed)
    assert alone_deps == listed_deps
    alone_names, listed_names = [m.name for m in alone.models], [m.name for m in listed.models]
    assert alone_names == listed_names
    # As if core had been listed first; `never` and xosgenx's `deps FILE` keep the file alone.
    assert [f.path for f in load_files([service], core="auto")] == [str(CORE_XPROTO), str(service)]
    file_names = [m.name for m in load_schema([service]).models]
    assert file_names == ["Shop", "Order"]


def test_a_file_that_defines_the_core_models_takes_the_builtins_place(tmp_path: Path) -> None:
    own_core = parse_text("message XOSBase { required string created = 2; }\n", "mine.xproto")
    service = parse_text("message Box (XOSBase) { }\n", "box.xproto")
    assert not needs_builtin_core([own_core, service])
    assert needs_builtin_core([service])
    # Names the core does not define never pull it in either.
    assert not needs_builtin_core([parse_text("message Box (Unknown) { }\n", "x.xproto")])


def test_lint_of_a_service_alone_is_clean_and_says_nothing_about_the_core(tmp_path: Path) -> None:
    service = tmp_path / "shop.xproto"
    service.write_text(SERVICE)
    done = run_cli("xprotogen", "lint", "--strict", str(service))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def _generated(schema: Schema, directory: Path) -> dict[str, str]:
    """What the schema gives a synchronizer, short of compiling: model-deps and the protos."""
    from xprotogen.targets.proto import write_proto

    write_proto(schema, directory, compile=False)
    files = {p.name: p.read_text() for p in sorted(directory.iterdir())}
    files["model-deps"] = render_model_deps(schema)
    return files


@pytest.mark.parametrize("name", [n for n in corpus_names() if n != "core"])
def test_a_corpus_service_alone_gives_what_it_gives_with_core_listed_first(
    name: str, tmp_path: Path
) -> None:
    from xprotogen.targets.scaffold import own_files, synced_models

    service = str(corpus_file(name))
    alone = load_schema([service], core="auto")
    if not needs_builtin_core(load_files([service])):
        # It defines the core names it uses (or uses none): read alone, as xosgenx would.
        alone_facts, file_facts = _facts(alone), _facts(load_schema([service]))
        assert alone_facts == file_facts
        return
    listed = load_schema([CORE_XPROTO, service])
    alone_facts, listed_facts = _facts(alone), _facts(listed)
    assert alone_facts == listed_facts
    alone_files = _generated(alone, tmp_path / "alone")
    listed_files = _generated(listed, tmp_path / "listed")
    assert alone_files == listed_files
    # The same models get steps: the service's, never the core's.
    steps_alone = synced_models(alone, own_files([service]))
    steps_listed = synced_models(listed, own_files([str(CORE_XPROTO), service]))
    names_alone, names_listed = [m.name for m in steps_alone], [m.name for m in steps_listed]
    assert names_alone == names_listed
    files_alone = {m.file for m in steps_alone}
    assert files_alone <= {service}
    # And with xosgenx's core itself listed first, the same sync order.
    with_theirs = load_schema([corpus_file("core"), service])
    alone_deps, their_deps = render_model_deps(alone), render_model_deps(with_theirs)
    assert alone_deps == their_deps
