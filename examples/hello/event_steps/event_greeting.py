"""Event step for hello, filled in: a message on topic `hello.greetings` adds a greeting.

The message is JSON, {"country": "France", "message": "salut"}. With an `event_bus` in the
config the runtime feeds it Kafka messages; the demo hands it one event directly.
"""

from __future__ import annotations

import json

from xsync import Event, EventStep


class GreetingEventStep(EventStep):
    """Creates the greeting an event asks for, once: a replayed event finds it already there."""

    technology = "kafka"
    topics = ["hello.greetings"]

    def process_event(self, event: Event) -> None:
        if event.value is None:
            return
        wanted = json.loads(event.value)
        api = self.model_accessor
        country = api.Country.objects.get(name=wanted["country"])
        if api.Greeting.objects.filter(message=wanted["message"], country=country).exists():
            return  # at-least-once delivery: the same event may come twice
        api.Greeting(message=wanted["message"], country=country).save()
        self.log.info("greeting %r added to %s", wanted["message"], country.name)
