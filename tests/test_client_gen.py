"""`xsgen client`: typed ORM classes that mypy --strict and black accept, and that work."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

from conftest import CORE_XPROTO, ROOT, corpus_file, corpus_names, run_cli
from xprotogen.diagnostics import XprotoError
from xprotogen.loader import load_schema
from xprotogen.render import render
from xprotogen.targets.client import build_client, render_client
from xsync import ModelAccessor
from xsync.orm import ModelObject, ORMError
from xsync.store import open_store

HELLO = ROOT / "examples" / "hello" / "hello.xproto"
SES_FILES = [CORE_XPROTO, corpus_file("simpleexampleservice")]
HELLO_FILES = [CORE_XPROTO, HELLO]

# A program written against the generated client, as a step author would write it.
USES_CLIENT = """
from client import Country, Network, Site, Slice, World, bind
from xsync import ModelAccessor


def use(api: ModelAccessor) -> None:
    bind(api)
    site = Site.objects.get(name="x")
    name: str = site.name
    latitude: float | None = site.latitude
    for piece in site.slices.filter(enabled=True):
        owner: Site | None = piece.site
        count: int = piece.max_instances
        networks: list[Network] = list(piece.availableNetworks.all())
    first = Slice.objects.filter(site=site).first()
    if first is not None:
        first.site = site
        first.site_id = None
        first.save(update_fields=["site"])
    ids: list[int] = Network.objects.all()[0].permitted_slices_ids
    try:
        World.objects.get(name="y")
    except World.DoesNotExist:
        pass
    country = Country(name="fr")
    world: World | None = country.world
"""


def _mypy(directory: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MYPYPATH=os.pathsep.join([str(ROOT / "runtime"), str(ROOT)]))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(directory / ".mypy"),
            *files,
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client for core + simpleexampleservice + hello, written by the CLI."""
    out = tmp_path_factory.mktemp("client") / "client.py"
    result = run_cli("xprotogen", "client", *map(str, SES_FILES), str(HELLO), "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_the_client_passes_mypy_strict_with_a_program_using_it(generated: Path) -> None:
    (generated.parent / "uses_client.py").write_text(USES_CLIENT)
    result = _mypy(generated.parent, "client.py", "uses_client.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_catches_misuse_of_the_typed_attributes(generated: Path) -> None:
    (generated.parent / "misuse.py").write_text(
        "from client import Site, Slice\n\n"
        "def misuse(site: Site, piece: Slice) -> None:\n"
        "    site.name = 3\n"
        "    piece.site = piece\n"
        "    count: str = piece.max_instances\n"
    )
    result = _mypy(generated.parent, "misuse.py")
    assert result.returncode == 1
    assert (
        'misuse.py:4: error: Incompatible types in assignment (expression has type "int", variable has type "str")'
        in result.stdout
    )
    assert "misuse.py:5: error" in result.stdout and "misuse.py:6: error" in result.stdout


def test_the_client_is_black_formatted(generated: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "black", "--check", "--line-length", "100", str(generated)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_generation_is_deterministic(generated: Path) -> None:
    schema = load_schema([*SES_FILES, HELLO])
    assert (
        render_client(schema)
        == render_client(load_schema([*SES_FILES, HELLO]))
        == generated.read_text()
    )


def test_docstrings_come_from_comments_descriptions_and_help_text() -> None:
    text = render_client(load_schema(HELLO_FILES))
    assert (
        'class World(ModelObject, model="World", ancestors=("XOSBase",)):\n    """A world that greetings are sent to.\n\n    A place that can be greeted"""'
        in text
    )
    assert '    name: Column[str] = Column()\n    """Name of the world"""' in text
    assert (
        '    world: ForeignKey[World] = ForeignKey(peer="World", column="world_id")\n    """The world this country is in"""'
        in text
    )


def test_attribute_types_follow_the_fields() -> None:
    classes = {c.name: c for c in build_client(load_schema(SES_FILES))}
    slice_attributes = {a.name: a.annotation for a in classes["Slice"].attributes}
    assert slice_attributes["name"] == "Column[str]"  # required
    assert slice_attributes["description"] == "Column[str | None]"  # optional, no default
    assert slice_attributes["max_instances"] == "Column[int]"  # has a default
    assert slice_attributes["enacted"] == "Column[float | None]"  # a timestamp
    assert (
        slice_attributes["site"] == "ForeignKey[Site]"
        and slice_attributes["site_id"] == "Column[int | None]"
    )
    assert slice_attributes["networkslices"] == "Reverse[NetworkSlice]"
    assert slice_attributes["availableNetworks"] == "Reverse[Network]"
    network = {a.name: a.annotation for a in classes["Network"].attributes}
    assert (
        network["permitted_slices"] == "ManyToMany[Slice]"
        and network["permitted_slices_ids"] == "Column[list[int]]"
    )
    site = {a.name: a.annotation for a in classes["Site"].attributes}
    assert site["latitude"] == "Column[float | None]" and site["hosts_nodes"] == "Column[bool]"
    assert "XOSBase" not in classes


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hello_api(tmp_path: Path) -> Iterator[ModelAccessor]:
    schema = load_schema(HELLO_FILES)
    with ModelAccessor(open_store(f"sqlite:///{tmp_path / 'client.db'}", schema), schema) as api:
        yield api


def test_a_bound_client_reads_and_writes_like_the_runtime_classes(
    tmp_path: Path, hello_api: ModelAccessor
) -> None:
    (tmp_path / "hello_client.py").write_text(render_client(load_schema(HELLO_FILES)))
    client = _import(tmp_path / "hello_client.py", "hello_client")
    client.bind(hello_api)
    assert hello_api.World is client.World and hello_api.models["Country"] is client.Country
    earth = client.World(name="earth")
    earth.save()
    client.Country(name="fr", world=earth).save()
    country = client.Country.objects.get(name="fr")
    assert type(country.world) is client.World and country.world.name == "earth"
    assert [c.name for c in earth.countries.all()] == ["fr"]
    # the run-time view of the same store sees the same objects
    runtime_view = hello_api.as_actor("synchronizer")
    seen = runtime_view.Country.objects.get(name="fr")
    assert not isinstance(seen, client.Country) and seen.world_id == earth.id
    assert issubclass(client.World, ModelObject)


def test_a_client_for_another_schema_is_refused(tmp_path: Path, hello_api: ModelAccessor) -> None:
    other = tmp_path / "other.xproto"
    other.write_text(
        HELLO.read_text().replace("optional bool fail = 3", "optional bool failing = 3")
    )
    (tmp_path / "other_client.py").write_text(
        render_client(load_schema([CORE_XPROTO, other]))
    )
    client = _import(tmp_path / "other_client.py", "other_client")
    with pytest.raises(
        ORMError,
        match="the client's Greeting differs from the schema in fail, failing; regenerate the client",
    ):
        client.bind(hello_api)


def test_names_python_cannot_take_are_reported_with_their_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xproto"
    bad.write_text(
        "message Thing (XOSBase) {\n    required string save = 1;\n}\n"
        "message Other (XOSBase) {\n    optional int32 lambda = 1;\n}\n"
    )
    with pytest.raises(XprotoError) as caught:
        build_client(load_schema([CORE_XPROTO, bad]))
    assert [f"{d.span.line}: {d.message}" for d in caught.value.diagnostics] == [
        "2: Thing.save: the name is reserved by the ORM; rename the field",
        "5: Other.lambda: not a usable Python attribute name; rename the field",
    ]


def test_the_cli_reports_bad_input_in_one_line_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xproto"
    bad.write_text("message Thing (XOSBase) {\n    required string save = 1;\n}\n")
    result = run_cli(
        "xprotogen", "client", str(CORE_XPROTO), str(bad), "-o", str(tmp_path / "out.py")
    )
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[0]
        == f"{bad}:2:5: error: Thing.save: the name is reserved by the ORM; rename the field [client-name]"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.py").exists()


def test_the_cli_writes_to_stdout_without_an_output(tmp_path: Path) -> None:
    result = run_cli("xprotogen", "client", str(CORE_XPROTO), str(HELLO))
    assert result.returncode == 0 and result.stdout == render_client(load_schema(HELLO_FILES))


@pytest.mark.parametrize("name", corpus_names())
def test_every_corpus_file_gives_a_client_with_one_class_per_concrete_model(name: str) -> None:
    files = [CORE_XPROTO] if name == "core" else [CORE_XPROTO, corpus_file(name)]
    schema = load_schema(files)
    classes = build_client(schema)
    concrete = [m.name for m in schema.models if not m.options.flag("abstract")]
    assert [c.name for c in classes] == list(dict.fromkeys(concrete))  # a repeated name: the first
    # black is slow on 30 files; the formatted output is checked once above.
    compile(
        render("client/models.py.j2", classes=classes, sources=name, uses_any=True),
        f"{name}_client.py",
        "exec",
    )
