"""Objects for the simpleexampleservice demo: `python populate.py BUILD/config.yaml`.

A service with two instances; one uses a color whose code is not #rrggbb, so the color
fails and that instance is held back.
"""

from __future__ import annotations

import sys

import xsync


def main(config_path: str) -> None:
    with xsync.connect(config_path) as api:
        service = api.SimpleExampleService(name="simple", service_message="hello from the service")
        service.save()
        green = api.ColorNew(name="green", html_code="#00aa00")
        green.save()
        blurple = api.ColorNew(name="blurple", html_code="blurple")
        blurple.save()
        api.SimpleExampleServiceInstance(
            owner=service, name="page-1", tenant_message="a green page", foreground_color=green
        ).save()
        api.SimpleExampleServiceInstance(
            owner=service, name="page-2", tenant_message="a blurple page", foreground_color=blurple
        ).save()
        print("created 1 service, 2 colors, 2 service instances")


if __name__ == "__main__":
    main(sys.argv[1])
