"""The XOS compatibility layer, API by API, on a small synchronizer written for XOS.

Each test writes an XOS-style synchronizer folder (steps, policies, event steps and helpers
that import `xossynchronizer`, `xosconfig`, `multistructlog`, `xosapi`) and runs it through
the real runtime on a real SQLite store.
"""

from __future__ import annotations

import importlib
import logging
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import CORE_XPROTO
from kafka_fixture import kafka_endpoint  # noqa: F401 - a fixture
from xsync import connect
from xsync.config import load_config
from xsync.runner import Runner, build_runtime

DEMO = """
option app_label = "demo";
option name = "demo";

message DemoService (Service) {
    optional string greeting = 1 [default = "hi", max_length = 64];
}

message DemoServiceInstance (ServiceInstance) {
    optional int32 port = 1;
    optional string color = 2 [feedback_state = True, max_length = 32];
    optional manytoone compute_instance->ComputeServiceInstance:demo_instances = 3:1004;
}

message DemoCompute (Service) {
}

message DemoComputeInstance (ComputeServiceInstance) {
    optional manytoone node->Node:demo_compute_instances = 1:1005;
}

message LonelyService (Service) {
    optional string motto = 1 [max_length = 64];
}

message DemoNote (XOSBase) {
    required string text = 1 [max_length = 64];
    optional manytoone instance->DemoServiceInstance:notes = 2:1001;
}
"""


class Folder:
    """An XOS synchronizer folder (`xos/synchronizer`) written by a test, and its xsync config."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "xos" / "synchronizer"
        (self.dir / "models").mkdir(parents=True)
        (self.dir / "models" / "demo.xproto").write_text(DEMO)
        self.dirs: dict[str, Path] = {}
        self.xos_config: dict[str, Any] = {"name": "demo", "logging": {"version": 1}}

    def write(self, relative: str, text: str) -> Path:
        path = self.dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        top = relative.split("/")[0]
        if top in ("steps", "model_policies", "event_steps", "pull_steps"):
            self.dirs[f"{top}_dir"] = self.dir / top
        return path

    def config(self, **extra: Any) -> Path:
        (self.dir / "config.yaml").write_text(yaml.safe_dump(self.xos_config))
        data: dict[str, Any] = {
            "name": "demo",
            "models_dir": str(self.dir / "models"),
            "models": [str(CORE_XPROTO), str(self.dir / "models" / "demo.xproto")],
            "store": f"sqlite:///{self.root / 'demo.db'}",
            "backoff_base_seconds": 0.05,
            "backoff_cap_seconds": 0.1,
            **{k: str(v) for k, v in self.dirs.items()},
            **extra,
        }
        path = self.root / "xsync.yaml"
        path.write_text(yaml.safe_dump(data))
        return path


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    return Folder(tmp_path)


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    yield
    # Every runtime a test opened is closed: nothing of the XOS names may remain.
    assert not [n for n in sys.modules if n.split(".")[0] in ("xossynchronizer", "xosconfig")]


def run(config: Path, *, log: logging.Logger | None = None, passes: float = 10) -> Any:
    runtime = build_runtime(load_config(config), log=log)
    try:
        runner = Runner(
            runtime.engine,
            runtime.store,
            policies=runtime.policy_engine,
            pulls=runtime.pull_scheduler,
            reaper=runtime.reaper,
        )
        assert runner.run_until_idle(timeout=passes)
    finally:
        runtime.close()
    return runtime


def one_pass(config: Path) -> tuple[Any, Any]:
    """Open the runtime, run one pass, close it: (its first step's module, the pass report).

    The module keeps what the step recorded in its globals after the runtime is closed."""
    runtime = build_runtime(load_config(config))
    try:
        module = sys.modules[runtime.steps[0].__module__] if runtime.steps else None
        report = Runner(runtime.engine, runtime.store).run_once()
    finally:
        runtime.close()
    return module, report


def service(api: Any) -> tuple[Any, Any]:
    svc = api.DemoService(name="demo")
    svc.save()
    si = api.DemoServiceInstance(name="si1", owner=svc, port=80)
    si.save()
    return svc, si


RECORDING_STEP = """
    from xossynchronizer.steps.syncstep import SyncStep
    from xossynchronizer.modelaccessor import DemoServiceInstance

    SEEN = []

    class SyncDemo(SyncStep):
        observes = DemoServiceInstance

        def sync_record(self, o):
            SEEN.append(o.name)
"""


# --- the import hook ------------------------------------------------------------------------


def test_the_xos_names_import_only_while_the_runtime_is_open(folder: Folder) -> None:
    folder.write("steps/sync_demo.py", RECORDING_STEP)
    config = folder.config()
    runtime = build_runtime(load_config(config))
    try:
        syncstep = importlib.import_module("xossynchronizer.steps.syncstep")
        from xsync.compat.xos import SyncStep

        assert syncstep.SyncStep is SyncStep
        assert [s.__name__ for s in runtime.steps] == ["SyncDemo"]
    finally:
        runtime.close()
    with pytest.raises(ImportError):
        importlib.import_module("xossynchronizer.steps.syncstep")


def test_a_real_installed_package_is_not_shadowed_outside_the_runtime(
    folder: Folder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = tmp_path / "site"
    (real / "xosconfig").mkdir(parents=True)
    (real / "xosconfig" / "__init__.py").write_text("REAL = True\nclass Config: pass\n")
    monkeypatch.syspath_prepend(str(real))
    import xosconfig  # the user's own package, imported before the runtime

    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep
        from xosconfig import Config
        CONFIG_CLASS = Config

        class SyncDemo(SyncStep):
            observes = "DemoServiceInstance"
        """,
    )
    log = logging.getLogger("xsync.test-shadow")
    with caplog.at_level(logging.WARNING, logger="xsync.test-shadow"):
        runtime = build_runtime(load_config(folder.config()), log=log)
    try:
        step_module = sys.modules[runtime.steps[0].__module__]
        from xsync.compat.xos import Config

        assert step_module.CONFIG_CLASS is Config  # the synchronizer's code gets ours
        assert any("xosconfig is installed" in r.getMessage() for r in caplog.records)
    finally:
        runtime.close()
    assert sys.modules["xosconfig"] is xosconfig and xosconfig.REAL
    del sys.modules["xosconfig"]
    assert importlib.import_module("xosconfig").REAL  # and a fresh import finds the real one
    del sys.modules["xosconfig"]


def test_model_accessor_module_gives_live_classes_and_the_accessor(folder: Folder) -> None:
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep
        from xossynchronizer.modelaccessor import *
        from xossynchronizer.modelaccessor import model_accessor

        FOUND = []

        class SyncDemo(SyncStep):
            observes = DemoServiceInstance

            def sync_record(self, o):
                FOUND.append((DemoService.objects.get(id=o.owner_id).name,
                              model_accessor.DemoServiceInstance.objects.count(),
                              self.model_accessor is model_accessor,
                              type(o) is DemoServiceInstance))
        """,
    )
    config = folder.config()
    with connect(config) as api:
        service(api)
    module, _ = one_pass(config)
    assert module.FOUND == [("demo", 1, True, True)]


def test_the_synchronizer_folder_is_on_sys_path_for_helpers(folder: Folder) -> None:
    folder.write("helpers.py", "def shout(text):\n    return text.upper()\n")
    folder.write(
        "model_policies/model_policy_demo.py",
        """
        from helpers import shout
        from xossynchronizer.model_policies.policy import Policy

        class DemoPolicy(Policy):
            model_name = "DemoServiceInstance"

            def handle_create(self, si):
                si.name = shout(si.name)
                si.save(update_fields=["name"])
        """,
    )
    config = folder.config()
    with connect(config) as api:
        service(api)
    run(config)
    with connect(config) as api:
        assert api.DemoServiceInstance.objects.get(port=80).name == "SI1"
    assert "helpers" not in sys.modules  # the folder's own modules leave with the runtime


# --- loggers ----------------------------------------------------------------------------------


def test_loggers_take_structlog_keywords_at_debug_level(
    folder: Folder, caplog: pytest.LogCaptureFixture
) -> None:
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep
        from xosconfig import Config
        from multistructlog import create_logger

        log = create_logger(Config().get("logging"))

        class SyncDemo(SyncStep):
            observes = "DemoServiceInstance"

            def sync_record(self, o):
                log.debug("module logger", o=o, count=3, **o.tologdict())
                self.log.info("step logger", o=o)
                self.log.new(step=self).warn("bound logger", port=o.port)
        """,
    )
    folder.write(
        "model_policies/model_policy_demo.py",
        """
        from xossynchronizer.model_policies.policy import Policy

        class DemoPolicy(Policy):
            model_name = "DemoServiceInstance"

            def handle_create(self, si):
                self.logger.debug("policy logger", si=si, onu_state="ENABLED")
                self.log.exception("policy log", name="clashes with LogRecord.name")
        """,
    )
    config = folder.config()
    with connect(config) as api:
        service(api)
    log = logging.getLogger("xsync")
    old = log.level
    log.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG, logger="xsync"):
            run(config, log=log)
    finally:
        log.setLevel(old)
    by_message = {r.getMessage(): r for r in caplog.records}
    module = by_message["module logger"]
    assert module.count == 3 and module.model_name == "DemoServiceInstance"  # type: ignore[attr-defined]
    assert module.name_ == "si1"  # type: ignore[attr-defined]
    assert by_message["step logger"].o.name == "si1"  # type: ignore[attr-defined]
    assert by_message["bound logger"].port == 80  # type: ignore[attr-defined]
    assert by_message["policy logger"].onu_state == "ENABLED"  # type: ignore[attr-defined]
    assert by_message["policy log"].name_ == "clashes with LogRecord.name"  # type: ignore[attr-defined]


# --- config -----------------------------------------------------------------------------------


def test_xosconfig_reads_the_synchronizers_config_file(folder: Folder) -> None:
    folder.xos_config.update({"custom": {"key": "value"}, "backoff_disabled": False})
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep
        from xosconfig import Config

        VALUES = (Config.get("custom.key"), Config().get("name"), Config.get("backoff_disabled"),
                  Config.get("accessor.kind"), Config.get("no.such.key"), Config().get_config_file(),
                  Config.get("steps_dir"))

        class SyncDemo(SyncStep):
            observes = "DemoServiceInstance"
        """,
    )
    config = folder.config()
    runtime = build_runtime(load_config(config))
    try:
        values = sys.modules[runtime.steps[0].__module__].VALUES
    finally:
        runtime.close()
    assert values == (
        "value",
        "demo",
        False,  # a configured false stays false (XOS would give the default)
        "grpcapi",  # XOS's default
        None,
        str(folder.dir / "config.yaml"),
        str(folder.dir / "steps"),  # what xsync runs, not the container path
    )


# --- pull steps, event steps, kafka producer ---------------------------------------------------


def test_pull_and_event_steps_subclass_the_xos_bases(folder: Folder) -> None:
    folder.write(
        "pull_steps/pull_demo.py",
        """
        from xossynchronizer.pull_steps.pullstep import PullStep
        from xossynchronizer.modelaccessor import DemoNote

        class DemoPullStep(PullStep):
            def __init__(self, **kwargs):
                super(DemoPullStep, self).__init__(observed_model=DemoNote, **kwargs)

            def pull_records(self):
                self.log.info("pulling", observed=self.observed_model.__name__)
                DemoNote(text="pulled", no_sync=True).save()
        """,
    )
    folder.write(
        "event_steps/demo_event.py",
        """
        import json
        from xossynchronizer.event_steps.eventstep import EventStep

        class DemoEventStep(EventStep):
            topics = ["demo.events"]
            technology = "kafka"

            def __init__(self, *args, **kwargs):
                super(DemoEventStep, self).__init__(*args, **kwargs)

            def process_event(self, event):
                value = json.loads(event.value)
                self.log.info("event", value=value)
                self.model_accessor.DemoNote(text=value["text"]).save()
        """,
    )
    config = folder.config()
    runtime = build_runtime(load_config(config))
    try:
        assert [s.__name__ for s in runtime.pull_steps] == ["DemoPullStep"]
        assert [s.__name__ for s in runtime.event_steps] == ["DemoEventStep"]
        Runner(runtime.engine, runtime.store, pulls=runtime.pull_scheduler).run_once()
        from xsync.events import Event

        step = runtime.event_steps[0](model_accessor=runtime.accessor, log=logging.getLogger("t"))
        step.process_event(Event("demo.events", None, b'{"text": "from an event"}', None))
    finally:
        runtime.close()
    with connect(config) as api:
        assert sorted(n.text for n in api.DemoNote.objects.all()) == ["from an event", "pulled"]


def test_xoskafka_producer_publishes_to_the_event_bus(folder: Folder, kafka_endpoint: str) -> None:
    import uuid

    from kafka import KafkaConsumer  # type: ignore[import-untyped]

    from xsync.engines.kafka_bus import api_version

    topic = f"xoskafka-{uuid.uuid4().hex[:8]}"
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep
        from xoskafka import XOSKafkaProducer

        class SyncDemo(SyncStep):
            observes = "DemoServiceInstance"

            def sync_record(self, o):
                XOSKafkaProducer.produce(TOPIC, o.name, '{"port": %d}' % o.port)
        """.replace("TOPIC", repr(topic)),
    )
    config = folder.config(event_bus={"kind": "kafka", "endpoint": kafka_endpoint})
    with connect(config) as api:
        service(api)
    runtime = build_runtime(load_config(config))
    try:
        producer = importlib.import_module("xoskafka").XOSKafkaProducer
        producer.init()
        with pytest.raises(Exception, match="already initialized"):
            producer.init()
        Runner(runtime.engine, runtime.store).run_once()
        producer.flush()
        producer.close()
    finally:
        runtime.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=[kafka_endpoint],
        api_version=api_version(),
        auto_offset_reset="earliest",
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        consumer_timeout_ms=20000,
    )
    try:
        record = next(iter(consumer))
    finally:
        consumer.close()
    assert (record.key, record.value) == (b"si1", b'{"port": 80}')


def test_a_step_narrowing_fetch_pending_with_class_names(folder: Folder) -> None:
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep

        SEEN = []

        class SyncServiceInstances(SyncStep):
            observes = "ServiceInstance"

            def fetch_pending(self, deletion=False):
                objs = super(SyncServiceInstances, self).fetch_pending(deletion=deletion)
                return [o for o in objs if "DemoServiceInstance" in o.class_names.split(",")]

            def sync_record(self, o):
                SEEN.append((o.model_name, o.name))
        """,
    )
    config = folder.config()
    with connect(config) as api:
        svc, si = service(api)
        api.ServiceInstance(name="plain", owner=svc).save()
    module, report = one_pass(config)
    assert module.SEEN == [("ServiceInstance", "si1")] and not report.skipped_steps
