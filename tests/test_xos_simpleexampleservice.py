"""simpleexampleservice, as published (Python 3 fixes only), on xsync.

Its model policy builds the Kubernetes objects of a web page (a compute instance, a config
map rendered from its Jinja2 template, a secret, two mounts); its sync step and event step
run through the real runtime, events through the real Kafka broker.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from xos_support import build, records, runner_of, synchronizer_dir, user_api, write_config


def populate(api: Any) -> dict[str, Any]:
    site = api.Site(name="mysite", login_base="my", abbreviated_name="ms")
    site.save()
    kubernetes = api.KubernetesService(name="kubernetes")
    kubernetes.save()
    service = api.SimpleExampleService(
        name="simpleexampleservice",
        service_message="hello from the service",
        service_secret="s3cr3t",
    )
    service.save()
    domain = api.TrustDomain(name="default", owner=kubernetes)
    domain.save()
    image = api.Image(name="httpd", kind="container", tag="2.4")
    image.save()
    slice = api.Slice(
        name="mysite_ses", site=site, service=service, trust_domain=domain, default_image=image
    )
    slice.save()
    red = api.ColorNew(name="red", html_code="#ff0000")
    red.save()
    page = api.SimpleExampleServiceInstance(
        name="page1",
        owner=service,
        tenant_message="hi tenant",
        tenant_secret="t0p",
        foreground_color=red,
    )
    page.save()
    api.EmbeddedImageNew(
        name="logo", url="http://example.org/logo.png", serviceinstance=page
    ).save()
    return {
        "kubernetes": kubernetes,
        "slice": slice,
        "image": image,
        "domain": domain,
        "page": page,
    }


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "simpleexampleservice")


@pytest.fixture
def made(config: Path) -> Iterator[dict[str, Any]]:
    with user_api(config) as api:
        yield populate(api)


def index_html(api: Any) -> str:
    (cfmap,) = records(api, "KubernetesConfigMap")
    return str(json.loads(cfmap.data)["index.html"])


def test_policy_builds_the_kubernetes_objects_and_the_sync_step_runs(
    config: Path, made: dict[str, Any]
) -> None:
    runtime = build(config)
    try:
        assert runner_of(runtime).run_until_idle(timeout=20)
    finally:
        runtime.close()
    with user_api(config) as api:
        page = api.SimpleExampleServiceInstance.objects.get(name="page1")
        assert (page.policy_status, page.policy_code) == ("done", 1)
        assert page.backend_status == "OK" and page.enacted >= page.updated
        (instance,) = records(api, "KubernetesServiceInstance")
        assert page.compute_instance.id == instance.id
        assert instance.name == f"simpleexampleserviceinstance-{page.id}"
        assert (instance.owner_id, instance.slice_id, instance.image_id) == (
            made["kubernetes"].id,
            made["slice"].id,
            made["image"].id,
        )
        assert instance.no_sync is False
        html = index_html(api)
        for text in (
            "hello from the service",
            "hi tenant",
            "#ff0000",
            "http://example.org/logo.png",
        ):
            assert text in html
        (secret,) = records(api, "KubernetesSecret")
        data = json.loads(secret.data)
        assert base64.b64decode(data["service_secret.txt"]) == b"s3cr3t"
        assert base64.b64decode(data["tenant_secret.txt"]) == b"t0p"
        assert secret.trust_domain_id == made["domain"].id
        (config_mount,) = records(api, "KubernetesConfigVolumeMount")
        (secret_mount,) = records(api, "KubernetesSecretVolumeMount")
        assert (config_mount.service_instance_id, config_mount.mount_path) == (
            instance.id,
            "/usr/local/apache2/htdocs",
        )
        assert (secret_mount.secret_id, secret_mount.mount_path) == (
            secret.id,
            "/usr/local/apache2/secrets",
        )


def test_a_user_change_rerenders_the_page_and_a_delete_removes_the_instance(
    config: Path, made: dict[str, Any]
) -> None:
    runtime = build(config)
    try:
        runner = runner_of(runtime)
        assert runner.run_until_idle(timeout=20)
        with user_api(config) as api:
            page = api.SimpleExampleServiceInstance.objects.get(name="page1")
            page.tenant_message = "changed by the user"
            page.save()
        assert runner.run_until_idle(timeout=20)
        with user_api(config) as api:
            assert "changed by the user" in index_html(api)
            (instance,) = records(api, "KubernetesServiceInstance")
            # The policy forced a new version of the compute instance (always_update_timestamp).
            assert instance.updated > instance.created
            api.SimpleExampleServiceInstance.objects.get(name="page1").delete()
        assert runner.run_until_idle(timeout=20)
    finally:
        runtime.close()
    with user_api(config) as api:
        assert records(api, "SimpleExampleServiceInstance") == []
        assert records(api, "KubernetesServiceInstance") == []
        # handle_delete ran before the rows went: the instance it deleted is reaped too.
        assert api.KubernetesServiceInstance.deleted_objects.count() == 0
        assert api.SimpleExampleServiceInstance.deleted_objects.count() == 0


def test_the_folder_is_read_in_place() -> None:
    folder = synchronizer_dir("simpleexampleservice")
    assert (folder / "model_policies" / "model_policy_simpleexampleserviceinstance.py").is_file()
