"""Test your synchronizer's code in-process: `from xsync.testing import Harness`.

A `Harness` loads a synchronizer from its config (models, sync steps, model policies, pull
and event steps) onto a temporary embedded SQLite store of its own, so a test can create
objects, run one pass (or until idle), run the pull steps, feed one event, and then inspect
each object's outcome and backend status and the calls your code received::

    from xsync.testing import Harness

    def test_a_world_is_synced(tmp_path):
        with Harness("config.yaml", tmp_path) as h:
            earth = h.create("World", name="earth")
            h.run_pass()
            assert h.outcome("World", earth.id) == "synced"
            assert h.status("World", earth.id) == (1, "OK")
            assert h.calls_to("sync_record") == [Call("SyncWorld", "sync_record", "World", earth.id)]

Nothing reaches the config's own store, its remote core or its event bus: the harness swaps
them for the temporary store and events fed by hand.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

from .config import Config, load_config
from .engines.pull import PullRun
from .engines.sync import PassReport
from .authoring import Event
from .runner import Runner, Runtime, build_runtime

__all__ = ["Call", "Harness"]

# The methods of each kind of user class that the harness records, by kind.
_RECORDED = {
    "steps": ("sync_record", "delete_record"),
    "policies": ("handle_create", "handle_update", "handle_delete"),
    "pull_steps": ("pull_records",),
    "event_steps": ("process_event",),
}


@dataclass(frozen=True, slots=True)
class Call:
    """One call your code received: the class, the method, and the object's model and id.

    For `pull_records` there is no object; for `process_event`, `model` is the event's topic.
    """

    cls: str
    method: str
    model: str | None = None
    id: int | None = None


class Harness:
    """A synchronizer on a temporary store; use it as a context manager, or call `close`.

    `calls` lists, in order, every call of your steps', policies' and event and pull steps'
    methods while the harness is open; `last_pass` is the report of the last `run_pass`.
    """

    def __init__(self, config: Config | str | Path, directory: str | Path | None = None) -> None:
        """Load `config` onto a fresh store in `directory` (a temporary one when None)."""
        loaded = config if isinstance(config, Config) else load_config(config)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="xsync-testing-")
            directory = self._tmp.name
        store = Path(directory) / f"{loaded.name}-test.db"
        store.unlink(missing_ok=True)
        self.config: Config = replace(
            loaded, store=f"sqlite:///{store}", accessor=None, event_bus=None
        )
        self.calls: list[Call] = []
        self.last_pass: PassReport | None = None
        self._restore: list[Callable[[], None]] = []
        try:
            self.runtime: Runtime = build_runtime(
                self.config, log=logging.getLogger("xsync.testing")
            )
        except BaseException:
            if self._tmp is not None:
                self._tmp.cleanup()
            raise
        self._runner = Runner(
            self.runtime.engine,
            self.runtime.store,
            policies=self.runtime.policy_engine,
            pulls=self.runtime.pull_scheduler,
        )
        for kind, methods in _RECORDED.items():
            for cls in getattr(self.runtime, kind):
                for method in methods:
                    self._record(cls, method)

    # --- objects ---------------------------------------------------------------------------

    @property
    def api(self) -> Any:
        """The models, as a user script sees them (`h.api.World.objects.all()`)."""
        return self.runtime.accessor.as_actor("user")

    def create(self, model: str, **values: Any) -> Any:
        """Create and save a `model` object as a user would; links take objects or ids."""
        obj = getattr(self.api, model)(**values)
        obj.save()
        return obj

    def get(self, model: str, id: int) -> Any:
        """The object as stored now."""
        return getattr(self.api, model).objects.get(id=id)

    def status(self, model: str, id: int) -> tuple[int, str]:
        """The object's `(backend_code, backend_status)`: 0 pending, 1 synced, 2 failed."""
        record = self.runtime.store.get(model, id)
        return int(record["backend_code"]), str(record["backend_status"])

    # --- running ---------------------------------------------------------------------------

    def run_pass(self) -> PassReport:
        """One pass, as `xsync run --once`: model policies, due pull steps, then the syncs."""
        self.last_pass = self._runner.run_once()
        return self.last_pass

    def run_until_idle(self, timeout: float = 30.0) -> bool:
        """Passes until only backing-off work is left; False if `timeout` seconds were not enough."""
        idle = self._runner.run_until_idle(timeout=timeout)
        self.last_pass = None
        return idle

    def outcome(self, model: str, id: int) -> str | None:
        """How the last `run_pass` ended for the object ("synced", "failed", "deferred",
        "held", ...), or None when the pass did not reach it."""
        if self.last_pass is None:
            return None
        found = self.last_pass.outcomes.get((model, id)) or self.last_pass.deletions.get(
            (model, id)
        )
        return None if found is None else str(found.value)

    def run_pull_steps(self) -> list[PullRun]:
        """Run every pull step once, now, whatever its interval."""
        scheduler = self.runtime.pull_scheduler
        if scheduler is None:
            return []
        return [scheduler._run(step) for step in self.runtime.pull_steps]

    def feed_event(
        self, topic: str, value: bytes | str | None, *, key: bytes | str | None = None
    ) -> int:
        """Hand one event to every event step that listens to `topic`; how many did.

        A step's exception is raised here, so a test sees it; the runtime would retry it.
        """
        event = Event(topic=topic, key=_bytes(key), value=_bytes(value), timestamp=None)
        accessor = self.runtime.accessor  # as the event engine gets it
        steps = [s for s in self.runtime.event_steps if topic in s.topics]
        for step in steps:
            log = logging.getLogger(f"xsync.testing.{step.__name__}")
            step(model_accessor=accessor, log=log).process_event(event)
        return len(steps)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method, in order."""
        return [c for c in self.calls if c.method == method]

    # --- life --------------------------------------------------------------------------------

    def close(self) -> None:
        """Put the recorded classes back, close the store, remove a temporary directory."""
        while self._restore:
            self._restore.pop()()
        self.runtime.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Harness:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _record(self, cls: type, method: str) -> None:
        if method not in vars(cls) and not any(method in vars(b) for b in cls.__mro__[1:-1]):
            return
        original = getattr(cls, method)
        calls = self.calls

        @functools.wraps(original)
        def recorded(instance: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(_call(cls.__name__, method, args))
            return original(instance, *args, **kwargs)

        had_own = method in vars(cls)
        setattr(cls, method, recorded)

        def restore() -> None:
            if had_own:
                setattr(cls, method, original)
            else:
                delattr(cls, method)

        self._restore.append(restore)


def _call(cls: str, method: str, args: tuple[Any, ...]) -> Call:
    if not args:
        return Call(cls, method)
    target = args[0]
    if isinstance(target, Event):
        return Call(cls, method, target.topic)
    model = getattr(target, "model_name", None)
    id_ = getattr(target, "id", None)
    return Call(cls, method, model, id_ if isinstance(id_, int) else None)


def _bytes(value: bytes | str | None) -> bytes | None:
    return value.encode("utf-8") if isinstance(value, str) else value
