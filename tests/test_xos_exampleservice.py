"""exampleservice, as published (Python 3 fixes only), on xsync.

Its model policy picks a node with `LeastLoadedNodeScheduler` and creates an OpenStack
instance through the core's `get_service_instance_class`; its sync step waits for the
instance (DeferredException) and then runs its Ansible playbook over SSH. Ansible is the
boundary: a stand-in `ansible_runner` module records the run instead of reaching a host.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from xos_support import build, records, runner_of, synchronizer_dir, user_api, write_config

STAND_IN = """
import json, os

class Result:
    status = "successful"
    rc = 0
    stats = {"ok": {"exampleserviceinstance-host": 3}}

def run(**kwargs):
    playbook = kwargs["playbook"]
    with open(os.path.join(kwargs["private_data_dir"], "inventory", "hosts")) as f:
        inventory = f.read()
    with open(os.environ["ANSIBLE_STAND_IN_LOG"], "a") as log:
        log.write(json.dumps({"playbook": playbook, "extravars": kwargs["extravars"],
                              "inventory": inventory}) + "\\n")
    return Result()
"""


def populate(api: Any, key_file: Path) -> dict[str, Any]:
    site = api.Site(name="mysite", login_base="my", abbreviated_name="ms")
    site.save()
    node = api.Node(name="compute-1", site=site)
    node.save()
    openstack = api.OpenStackService(name="openstack")
    openstack.save()
    service = api.ExampleService(
        name="exampleservice",
        service_message="hello from exampleservice",
        private_key_fn=str(key_file),
    )
    service.save()
    image = api.Image(name="ubuntu", kind="vm")
    image.save()
    flavor = api.Flavor(name="m1.small", flavor="m1.small")
    flavor.save()
    slice = api.Slice(
        name="mysite_example",
        site=site,
        service=service,
        default_image=image,
        default_flavor=flavor,
    )
    slice.save()
    blue = api.Color(name="blue", html_code="#0000ff")
    blue.save()
    si = api.ExampleServiceInstance(
        name="web", owner=service, tenant_message="hello tenant", foreground_color=blue
    )
    si.save()
    api.EmbeddedImage(name="cat", url="http://example.org/cat.jpg", serviceinstance=si).save()
    return {
        "node": node,
        "openstack": openstack,
        "slice": slice,
        "si": si,
        "image": image,
        "flavor": flavor,
    }


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "node_key"
    path.write_text("-----BEGIN FAKE KEY-----\n")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "exampleservice")


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "ansible-stand-in" / "ansible_runner"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(STAND_IN)
    log = tmp_path / "ansible-runs.jsonl"
    monkeypatch.setenv("ANSIBLE_STAND_IN_LOG", str(log))
    monkeypatch.syspath_prepend(str(folder.parent))
    yield log
    import sys

    sys.modules.pop("ansible_runner", None)


def provision_instance(config: Path) -> None:
    """What the OpenStack synchronizer would do: boot the VM, give it a management port."""
    import xsync

    with xsync.connect(config, actor="synchronizer") as api:
        (instance,) = records(api, "OpenStackServiceInstance")
        instance.backend_handle = "nova-vm-42"
        instance.save()
        template = api.NetworkTemplate(name="management", vtn_kind="MANAGEMENT_LOCAL")
        template.save()
        network = api.Network(name="management", template=template, owner=instance.slice)
        network.save()
        api.Port(network=network, service_instance=instance, ip="10.0.0.7").save()


def test_policy_places_an_instance_and_the_step_runs_the_playbook_over_ssh(
    config: Path, key_file: Path, stand_in: Path
) -> None:
    with user_api(config) as api:
        made = populate(api, key_file)
    runtime = build(config)
    try:
        runner = runner_of(runtime)
        runner.run_once()
        with user_api(config) as api:
            (instance,) = records(api, "OpenStackServiceInstance")
            si = api.ExampleServiceInstance.objects.get(id=made["si"].id)
            assert instance.name == f"exampleserviceinstance-{si.id}"
            assert (instance.node_id, instance.slice_id, instance.owner_id) == (
                made["node"].id,
                made["slice"].id,
                made["openstack"].id,
            )
            assert (instance.image_id, instance.flavor_id) == (made["image"].id, made["flavor"].id)
            assert si.compute_instance_id == instance.id and si.policy_status == "done"
            # No VM yet: the step defers, without an error.
            assert si.backend_code == 0 and "waiting on instance" in si.backend_status
        assert not stand_in.exists()
        provision_instance(config)
        runner.run_once()
    finally:
        runtime.close()
    (run,) = [json.loads(line) for line in stand_in.read_text().splitlines()]
    assert run["playbook"] == str(
        synchronizer_dir("exampleservice") / "steps" / "exampleserviceinstance_playbook.yaml"
    )
    variables = run["extravars"]
    assert variables["tenant_message"] == "hello tenant"
    assert variables["service_message"] == "hello from exampleservice"
    assert variables["foreground_color"] == "#0000ff" and "background_color" not in variables
    assert variables["images"] == [{"name": "cat", "url": "http://example.org/cat.jpg"}]
    assert (variables["ssh_ip"], variables["hostname"], variables["username"]) == (
        "10.0.0.7",
        "compute-1",
        "ubuntu",
    )
    assert variables["private_key"] == "-----BEGIN FAKE KEY-----\n"
    assert variables["ansible_tag"] == f"ExampleServiceInstance_{made['si'].id}"
    assert run["inventory"].startswith("10.0.0.7 ansible_user=ubuntu")
    with user_api(config) as api:
        si = api.ExampleServiceInstance.objects.get(id=made["si"].id)
        assert si.backend_status == "OK" and si.backend_code == 1


def test_without_ansible_runner_the_object_fails_naming_the_package(
    config: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    if importlib.util.find_spec("ansible_runner") is not None:
        pytest.skip("ansible-runner is installed here")
    with user_api(config) as api:
        made = populate(api, key_file)
    runtime = build(config)
    try:
        runner = runner_of(runtime)
        runner.run_once()
        provision_instance(config)
        runner.run_once()
    finally:
        runtime.close()
    with user_api(config) as api:
        si = api.ExampleServiceInstance.objects.get(id=made["si"].id)
    assert si.backend_code == 2
    assert si.backend_status.endswith(
        "needs the ansible-runner package, which is not installed (pip install ansible-runner)"
    )


def test_deleting_the_service_instance_deletes_its_instance(config: Path, key_file: Path) -> None:
    with user_api(config) as api:
        made = populate(api, key_file)
    runtime = build(config)
    try:
        runner = runner_of(runtime)
        runner.run_once()
        with user_api(config) as api:
            api.ExampleServiceInstance.objects.get(id=made["si"].id).delete()
        for _ in range(3):
            runner.run_once()
    finally:
        runtime.close()
    with user_api(config) as api:
        assert records(api, "ExampleServiceInstance") == []
        assert records(api, "OpenStackServiceInstance") == []
        assert api.OpenStackServiceInstance.deleted_objects.count() == 0


def test_ansible_sync_step_runs_its_playbook_with_the_mapped_inputs(
    tmp_path: Path, stand_in: Path
) -> None:
    from test_xos_compat import Folder, run, service

    folder = Folder(tmp_path / "demo")
    folder.write("steps/demo_playbook.yaml", "- hosts: all\n  tasks: []\n")
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.ansiblesyncstep import AnsibleSyncStep

        class SyncDemo(AnsibleSyncStep):
            observes = "DemoServiceInstance"
            template_name = "demo_playbook.yaml"

            def map_sync_inputs(self, o):
                return {"name": o.name, "port": o.port}

            def map_sync_outputs(self, o, result):
                o.backend_handle = "ran:%d" % sum(result["ok"].values())
                o.save(update_fields=["backend_handle"])
        """,
    )
    config = folder.config()
    import xsync

    with xsync.connect(config) as api:
        service(api)
    run(config)
    (call,) = [json.loads(line) for line in stand_in.read_text().splitlines()]
    assert call["playbook"] == str(folder.dir / "steps" / "demo_playbook.yaml")
    assert call["extravars"] == {"name": "si1", "port": 80}
    assert call["inventory"].startswith("localhost ansible_connection=local")
    with xsync.connect(config) as api:
        assert api.DemoServiceInstance.objects.get(name="si1").backend_handle == "ran:3"
