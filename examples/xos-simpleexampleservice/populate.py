"""Objects for the XOS drop-in demo: `python populate.py BUILD/config.yaml`.

What an operator would create in XOS for simpleexampleservice: the Kubernetes service it runs
on, a slice with an image, and one web page (a service instance). The synchronizer's own
model policy, run unchanged by xsync, then builds the Kubernetes objects of the page.
"""

from __future__ import annotations

import sys

import xsync


def main(config_path: str) -> None:
    with xsync.connect(config_path) as api:
        site = api.Site(name="mysite", login_base="my", abbreviated_name="ms")
        site.save()
        kubernetes = api.KubernetesService(name="kubernetes")
        kubernetes.save()
        service = api.SimpleExampleService(
            name="simpleexampleservice",
            service_message="hello from XOS code",
            service_secret="s3cr3t",
        )
        service.save()
        domain = api.TrustDomain(name="default", owner=kubernetes)
        domain.save()
        image = api.Image(name="httpd", kind="container", tag="2.4")
        image.save()
        api.Slice(
            name="mysite_ses", site=site, service=service, trust_domain=domain, default_image=image
        ).save()
        api.SimpleExampleServiceInstance(
            owner=service, name="page-1", tenant_message="a page built by the XOS policy"
        ).save()
        print("created a Kubernetes service, a slice and 1 service instance")


if __name__ == "__main__":
    main(sys.argv[1])
