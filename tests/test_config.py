"""The synchronizer config: every option read and resolved, every mistake one clear line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsync.config import (
    AccessorConfig,
    Config,
    ConfigError,
    EventBusConfig,
    LoggingConfig,
    load_config,
)

from conftest import CORE_XPROTO

HELLO = Path(__file__).resolve().parent.parent / "examples" / "hello" / "hello.xproto"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A synchronizer directory: models (core + hello), step directories, a deps file."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "hello.xproto").write_text(HELLO.read_text())
    (models / "core.xproto").write_text(CORE_XPROTO.read_text())
    (models / "alpha.xproto").write_text("")
    for name in ("steps", "policies", "pull_steps", "event_steps", "logs"):
        (tmp_path / name).mkdir()
    (tmp_path / "deps.json").write_text("{}")
    (tmp_path / "secret").write_text("s3cret\nignored second line\n")
    return tmp_path


def write(project: Path, text: str, name: str = "sync.yaml") -> Path:
    path = project / name
    path.write_text(text)
    return path


MINIMAL = "name: hello\nmodels_dir: models\n"


def test_every_option_is_read(project: Path) -> None:
    path = write(
        project,
        """
name: hello-sync
accessor: {endpoint: "127.0.0.1:50051", username: admin@opencord.org, password: "@secret"}
core_version: ">=4.0.0"
dependency_graph: deps.json
models_dir: models
steps_dir: steps
model_policies_dir: policies
pull_steps_dir: pull_steps
event_steps_dir: event_steps
event_bus: {kind: kafka, endpoint: "localhost:9092"}
logging: {level: debug, format: json, destination: logs/sync.log}
store: sqlite:///data/sync.db
max_workers: 8
backoff_base_seconds: 0.5
backoff_cap_seconds: 60
loop_interval_seconds: 2
""",
    )
    config = load_config(path)
    assert config == Config(
        path=path.resolve(),
        name="hello-sync",
        models_dir=project / "models",
        model_files=(
            project / "models/core.xproto",
            project / "models/alpha.xproto",
            project / "models/hello.xproto",
        ),
        store=f"sqlite:///{project / 'data/sync.db'}",
        accessor=AccessorConfig(
            endpoint="127.0.0.1:50051", username="admin@opencord.org", password="s3cret"
        ),
        core_version=">=4.0.0",
        dependency_graph=project / "deps.json",
        steps_dir=project / "steps",
        model_policies_dir=project / "policies",
        pull_steps_dir=project / "pull_steps",
        event_steps_dir=project / "event_steps",
        event_bus=EventBusConfig(kind="kafka", endpoint="localhost:9092"),
        logging=LoggingConfig(
            level="DEBUG", format="json", destination=str(project / "logs/sync.log")
        ),
        max_workers=8,
        backoff_base_seconds=0.5,
        backoff_cap_seconds=60.0,
        loop_interval_seconds=2.0,
    )


def test_defaults_give_an_sqlite_store_next_to_the_config(project: Path) -> None:
    config = load_config(write(project, MINIMAL))
    assert config.store == f"sqlite:///{project / 'hello.db'}"
    assert config.accessor is None
    assert (config.max_workers, config.backoff_base_seconds, config.backoff_cap_seconds) == (
        4,
        1.0,
        300.0,
    )
    assert config.loop_interval_seconds == 5.0
    assert config.logging == LoggingConfig(level="INFO", format="text", destination="stderr")
    assert config.steps_dir is None and config.event_bus is None and config.dependency_graph is None


def test_an_accessor_alone_means_no_embedded_store(project: Path) -> None:
    config = load_config(
        write(project, MINIMAL + "accessor: {endpoint: 'h:1', username: u, password: p}\n")
    )
    assert config.store is None
    assert config.accessor == AccessorConfig("h:1", "u", "p")


def test_paths_are_relative_to_the_config_not_the_working_directory(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(project, MINIMAL + "steps_dir: steps\nstore: sqlite:///sync.db\n")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = load_config(path)
    assert config.steps_dir == project / "steps"
    assert config.store == f"sqlite:///{project / 'sync.db'}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/sync.db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://postgres@127.0.0.1:5432/test",
    ],
)
def test_absolute_and_server_store_urls_are_kept(project: Path, url: str) -> None:
    assert load_config(write(project, MINIMAL + f"store: '{url}'\n")).store == url


def test_core_xproto_is_read_first_then_files_by_name(project: Path) -> None:
    files = load_config(write(project, MINIMAL)).model_files
    assert [f.name for f in files] == ["core.xproto", "alpha.xproto", "hello.xproto"]


def test_the_models_option_gives_the_order_explicitly(project: Path) -> None:
    files = load_config(
        write(project, MINIMAL + "models: [hello.xproto, core.xproto]\n")
    ).model_files
    assert [f.name for f in files] == ["hello.xproto", "core.xproto"]


def test_a_plain_password_is_kept_as_written(project: Path) -> None:
    config = load_config(
        write(project, MINIMAL + "accessor: {endpoint: 'h:1', username: u, password: plain}\n")
    )
    assert config.accessor is not None and config.accessor.password == "plain"


# Each mistake, the key the message must name, and the rest of the message.
ERRORS = [
    ("max_workers: four", "max_workers", 'expected an integer >= 1, got "four"'),
    ("max_workers: 0", "max_workers", "expected an integer >= 1, got 0"),
    ("max_workers: true", "max_workers", "expected an integer >= 1, got true"),
    ("max_worker: 3", "max_worker", "unknown option (did you mean 'max_workers'?)"),
    ("stpes_dir: steps", "stpes_dir", "unknown option (did you mean 'steps_dir'?)"),
    ("zzz: 1", "zzz", "unknown option"),
    ("backoff_base_seconds: -1", "backoff_base_seconds", "expected a finite number > 0, got -1"),
    ("backoff_base_seconds: soon", "backoff_base_seconds", 'expected a finite number > 0, got "soon"'),
    (
        "backoff_cap_seconds: 0.5",
        "backoff_cap_seconds",
        "must be at least backoff_base_seconds (1), got 0.5",
    ),
    ("loop_interval_seconds: [1]", "loop_interval_seconds", "expected a finite number > 0, got a list"),
    ("steps_dir: nowhere", "steps_dir", "no such directory: {project}/nowhere"),
    ("dependency_graph: missing.json", "dependency_graph", "no such file: {project}/missing.json"),
    ("core_version: 4", "core_version", "expected a non-empty string, got 4"),
    ("store: sync.db", "store", 'expected a database URL such as sqlite:///sync.db, got "sync.db"'),
    (
        "event_bus: {kind: rabbitmq, endpoint: 'h:1'}",
        "event_bus.kind",
        'only "kafka" is supported, got "rabbitmq"',
    ),
    ("event_bus: {kind: kafka}", "event_bus.endpoint", "required option is missing"),
    ("event_bus: kafka", "event_bus", 'expected a mapping, got "kafka"'),
    (
        "logging: {level: LOUD}",
        "logging.level",
        'expected one of DEBUG, INFO, WARNING, ERROR, got "LOUD"',
    ),
    ("logging: {format: xml}", "logging.format", 'expected text or json, got "xml"'),
    (
        "logging: {destination: nodir/x.log}",
        "logging.destination",
        "no such directory for the log file: {project}/nodir",
    ),
    ("logging: {levle: INFO}", "logging.levle", "unknown option (did you mean 'logging.level'?)"),
    ("accessor: {endpoint: 'h:1', username: u}", "accessor.password", "required option is missing"),
    (
        "accessor: {endpoint: 'h:1', username: u, password: 3}",
        "accessor.password",
        'expected a string (or "@file"), got a number (quote it)',
    ),
    (
        "accessor: {endpoint: 'h:1', username: u, password: p, wait_seconds: -1}",
        "accessor.wait_seconds",
        "expected a finite number > 0, got -1",
    ),
    (
        "accessor: {endpiont: 'h:1'}",
        "accessor.endpiont",
        "unknown option (did you mean 'accessor.endpoint'?)",
    ),
    (
        "models: [core.xproto, nope.xproto]",
        "models[1]",
        "no such file in models_dir: {project}/models/nope.xproto",
    ),
    ("models: core.xproto", "models", 'expected a list of .xproto file names, got "core.xproto"'),
]


@pytest.mark.parametrize(("line", "key", "problem"), ERRORS, ids=[e[0] for e in ERRORS])
def test_each_mistake_is_one_line_naming_the_file_and_key(
    project: Path, monkeypatch: pytest.MonkeyPatch, line: str, key: str, problem: str
) -> None:
    write(project, MINIMAL + line + "\n")
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError) as caught:
        load_config("sync.yaml")
    assert str(caught.value) == f"sync.yaml: {key}: {problem.format(project=project)}"
    assert caught.value.key == key


def test_the_documented_example_message(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, MINIMAL + "max_workers: four\n")
    monkeypatch.chdir(project)
    with pytest.raises(
        ConfigError, match=r'^sync\.yaml: max_workers: expected an integer >= 1, got "four"$'
    ):
        load_config("sync.yaml")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("models_dir: models\n", "name", "required option is missing"),
        ("name: x\n", "models_dir", "required option is missing"),
        ("name: x\nmodels_dir: nowhere\n", "models_dir", "no such directory: {project}/nowhere"),
        ("name: x\nmodels_dir: steps\n", "models_dir", "no .xproto files in {project}/steps"),
        ("name: ''\nmodels_dir: models\n", "name", 'expected a non-empty string, got ""'),
    ],
)
def test_required_options_and_model_directories(
    project: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str, problem: str
) -> None:
    write(project, text)
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError) as caught:
        load_config("sync.yaml")
    assert str(caught.value) == f"sync.yaml: {key}: {problem.format(project=project)}"


def test_an_unreadable_password_file_is_named(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        project, MINIMAL + "accessor: {endpoint: 'h:1', username: u, password: '@no-such-file'}\n"
    )
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError) as caught:
        load_config("sync.yaml")
    message = str(caught.value)
    assert message.startswith("sync.yaml: accessor.password: cannot read the password file ")
    assert "no-such-file" in message and "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "sync.yaml: the file is empty; expected a mapping of options (name, models_dir, ...)"),
        ("- name\n", "sync.yaml: expected a mapping, got a list"),
        (
            "name: [unclosed\n",
            "sync.yaml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'",
        ),
    ],
)
def test_the_file_as_a_whole(
    project: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    write(project, text)
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError) as caught:
        load_config("sync.yaml")
    assert str(caught.value) == expected


def test_a_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file$"):
        load_config(tmp_path / "nope.yaml")


@given(st.integers(min_value=-1000, max_value=1000))
def test_max_workers_accepts_exactly_the_positive_integers(workers: int) -> None:
    from xsync.config import parse_config

    models = Path(os.path.dirname(HELLO))
    data = {"name": "x", "models_dir": str(models), "max_workers": workers}
    if workers >= 1:
        assert parse_config(data, path=models / "sync.yaml").max_workers == workers
    else:
        with pytest.raises(ConfigError, match="max_workers: expected an integer >= 1"):
            parse_config(data, path=models / "sync.yaml")
