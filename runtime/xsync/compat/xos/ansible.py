"""`xossynchronizer.ansible_helper`: run a step's playbook through ansible-runner.

ansible-runner is optional: a step that runs a playbook without it installed fails with one
line naming the package to install. A playbook named without a directory is looked up in the
synchronizer's `steps_dir`, as XOS does.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .settings import Config


class AnsibleUnavailable(RuntimeError):
    """ansible-runner is not installed."""


class AnsiblePlaybookFailed(RuntimeError):
    """The playbook ran and failed; the message names it and the runner's status."""


def _runner() -> Any:
    try:
        return importlib.import_module("ansible_runner")
    except ImportError:
        raise AnsibleUnavailable(
            "running an Ansible playbook needs the ansible-runner package, which is not "
            "installed (pip install ansible-runner)"
        ) from None


def _playbook(name: str, path: str) -> Path:
    folder = Path(path) if path else Path(str(Config.get("steps_dir") or "."))
    playbook = (folder / name).resolve()
    if not playbook.is_file():
        raise AnsiblePlaybookFailed(f"no such playbook: {playbook}")
    return playbook


def run_template(
    name: str,
    opts: dict[str, Any],
    path: str = "",
    expected_num: int | None = None,
    ansible_config: str | None = None,
    ansible_hosts: str | None = None,
    run_ansible_script: str | None = None,
    object: Any = None,
) -> dict[str, Any]:
    """Run playbook `name` on `ansible_hosts` (default: localhost) with `opts` as variables."""
    inventory = ansible_hosts or "localhost ansible_connection=local\n"
    return _run(name, opts, path, inventory, ssh_key=None)


def run_template_ssh(
    name: str,
    opts: dict[str, Any],
    path: str = "",
    expected_num: int | None = None,
    object: Any = None,
) -> dict[str, Any]:
    """Run playbook `name` over SSH on `opts["ssh_ip"]` as `opts["username"]`, with the key
    in `opts["private_key"]`."""
    host = opts.get("ssh_ip") or opts.get("hostname")
    if not host:
        raise AnsiblePlaybookFailed(f"{name}: no ssh_ip (or hostname) to run the playbook on")
    user = opts.get("username", "root")
    inventory = (
        f"{host} ansible_user={user} ansible_ssh_common_args='-o StrictHostKeyChecking=no'\n"
    )
    return _run(name, opts, path, inventory, ssh_key=opts.get("private_key"))


def _run(
    name: str, opts: dict[str, Any], path: str, inventory: str, *, ssh_key: str | None
) -> dict[str, Any]:
    runner = _runner()
    playbook = _playbook(name, path)
    with tempfile.TemporaryDirectory(prefix="xsync-ansible-") as private:
        env = Path(private) / "env"
        env.mkdir()
        (Path(private) / "inventory").mkdir()
        (Path(private) / "inventory" / "hosts").write_text(inventory, encoding="utf-8")
        (env / "extravars").write_text(json.dumps(opts, default=str), encoding="utf-8")
        if ssh_key:
            key = env / "ssh_key"
            key.write_text(ssh_key, encoding="utf-8")
            os.chmod(key, 0o600)
        result = runner.run(
            private_data_dir=private, playbook=str(playbook), extravars=opts, quiet=True
        )
    status = getattr(result, "status", None)
    rc = getattr(result, "rc", None)
    if status != "successful" or rc not in (0, None):
        raise AnsiblePlaybookFailed(f"playbook {playbook.name} failed: status={status}, rc={rc}")
    return dict(getattr(result, "stats", None) or {})


def _sync_step_base() -> type:
    from .authoring import SyncStep

    return SyncStep


class AnsibleSyncStep(_sync_step_base()):  # type: ignore[misc]
    """XOS's base for steps that run a playbook per object.

    `map_sync_inputs(o)` gives the playbook's variables; the playbook is `template_name`
    (or `playbook`), looked up in `steps_dir`; `map_sync_outputs(o, result)` may read the
    runner's stats. Deletion runs the same playbook with `delete: True` unless
    `map_delete_inputs` is overridden to return the variables of a different run.
    """

    template_name: str | None = None
    playbook: str | None = None

    def _playbook_name(self) -> str:
        name = self.playbook or self.template_name
        if not name:
            raise AnsiblePlaybookFailed(f"{type(self).__name__} names no playbook (template_name)")
        return name

    def map_sync_inputs(self, o: Any) -> dict[str, Any]:
        return {}

    def map_sync_outputs(self, o: Any, result: dict[str, Any]) -> None:
        pass

    def map_delete_inputs(self, o: Any) -> dict[str, Any]:
        return {**self.map_sync_inputs(o), "delete": True}

    def sync_record(self, o: Any) -> None:
        result = run_template(self._playbook_name(), self.map_sync_inputs(o), object=o)
        self.map_sync_outputs(o, result)

    def delete_record(self, o: Any) -> None:
        run_template(self._playbook_name(), self.map_delete_inputs(o), object=o)
