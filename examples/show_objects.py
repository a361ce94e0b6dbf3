"""Print each object's backend status: `python show_objects.py CONFIG MODEL...`.

`xsync status` counts; this shows the messages behind the counts (why an object failed,
what a held-back object waits for).
"""

from __future__ import annotations

import sys

import xsync


def main(config_path: str, models: list[str]) -> None:
    with xsync.connect(config_path) as api:
        for model in models:
            for obj in api.get_model_class(model).objects.all():
                label = getattr(obj, "name", None) or getattr(obj, "message", None) or ""
                print(f"  {model} {obj.id} {label!r}: {obj.backend_status}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
