"""One discovery for the four kinds of step, and the authoring module's declared hooks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xsync.authoring import Policy, SyncStep, optional_hook
from xsync.loader import (
    StepLoadError,
    load_event_steps,
    load_policies,
    load_pull_steps,
    load_sync_steps,
)

EVERY_KIND = """
from xsync import EventStep, Policy, PullStep, SyncStep


class SyncBase(SyncStep):
    pass


class SyncSite(SyncBase):
    observes = "Site"


class PolicyBase(Policy):
    pass


class SitePolicy(PolicyBase):
    model_name = "Site"


class PullBase(PullStep):
    pass


class PullSites(PullBase):
    def pull_records(self) -> None:
        pass


class EventBase(EventStep):
    pass


class SiteEvents(EventBase):
    topics = ["sites"]
"""

LOADERS = {
    "sync": (load_sync_steps, ["SyncSite"]),
    "policy": (load_policies, ["SitePolicy"]),
    "pull": (load_pull_steps, ["PullSites"]),
    "event": (load_event_steps, ["SiteEvents"]),
}


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_kind_finds_its_concrete_classes_and_skips_bases_and_private_files(
    tmp_path: Path, kind: str
) -> None:
    _write(tmp_path, "steps.py", EVERY_KIND)
    # Helpers and tests beside the steps are not searched, whatever they define.
    _write(tmp_path, "_helpers.py", EVERY_KIND.replace('"Site"', '"Hidden"'))
    _write(tmp_path, "test_steps.py", EVERY_KIND.replace('"Site"', '"Hidden"'))
    load, expected = LOADERS[kind]
    assert [cls.__name__ for cls in load(tmp_path)] == expected


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_a_class_imported_into_a_second_file_counts_once(tmp_path: Path, kind: str) -> None:
    # A module name of its own per test: the plain import stays in sys.modules.
    _write(tmp_path, f"a_{kind}_steps.py", EVERY_KIND)
    _write(tmp_path, "b_more.py", f"from a_{kind}_steps import *\n")
    load, expected = LOADERS[kind]
    assert [cls.__name__ for cls in load(tmp_path)] == expected


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_kind_reports_a_broken_file_and_a_missing_folder_the_same_way(
    tmp_path: Path, kind: str
) -> None:
    load, _ = LOADERS[kind]
    _write(tmp_path, "broken.py", "x = 1\ny = 1 / 0\n")
    with pytest.raises(StepLoadError, match=r"broken\.py:2: ZeroDivisionError"):
        load(tmp_path)
    with pytest.raises(StepLoadError, match="nope: the directory does not exist"):
        load(tmp_path / "nope")


def test_an_optional_hook_is_found_only_where_a_subclass_defines_it() -> None:
    class Plain(SyncStep):
        observes = "Site"

    class Hooked(Plain):
        def after_sync_save(self, obj: object) -> None:
            pass

    class HookedPolicy(Policy):
        model_name = "Site"

        def after_policy_save(self, obj: object) -> None:
            pass

    assert optional_hook(Plain(), "after_sync_save") is None
    hooked = Hooked()
    assert optional_hook(hooked, "after_sync_save") == hooked.after_sync_save
    assert optional_hook(Policy, "after_policy_save") is None
    assert optional_hook(HookedPolicy, "after_policy_save") is HookedPolicy.after_policy_save
