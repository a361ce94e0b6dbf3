"""Objects for the hello demo: `python populate.py BUILD/config.yaml`.

A world with two countries; Atlantis fails to sync, so its greeting is held back. One
greeting has `fail` set and fails on its own. One more greeting arrives as an event,
handed to the project's event step as Kafka would hand it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import xsync


def main(config_path: str) -> None:
    project = Path(config_path).resolve().parent
    with xsync.connect(config_path) as api:
        earth = api.World(name="Earth")
        earth.save()
        france = api.Country(name="France", world=earth)
        france.save()
        atlantis = api.Country(name="Atlantis", world=earth)
        atlantis.save()
        api.Greeting(message="bonjour", country=france).save()
        api.Greeting(message="hello, is anyone there?", country=atlantis).save()
        api.Greeting(message="this one fails", country=france, fail=True).save()
        step = _event_step_class(project / "event_steps" / "event_greeting.py")
        event = xsync.Event(
            topic="hello.greetings",
            key=None,
            value=json.dumps({"country": "France", "message": "salut"}).encode(),
            timestamp=None,
        )
        step(model_accessor=api).process_event(event)
        print(
            f"created 1 world, 2 countries, {api.Greeting.objects.count()} greetings (one by an event)"
        )


def _event_step_class(path: Path) -> type[xsync.EventStep]:
    spec = importlib.util.spec_from_file_location("hello_event_step", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: type[xsync.EventStep] = module.GreetingEventStep
    return found


if __name__ == "__main__":
    main(sys.argv[1])
