"""The API of a schema as live protobuf classes: what the server and the client both speak.

The .proto text comes from `xsgen proto`'s target, so the wire format is the one users
generate for their own clients. It is compiled into a private descriptor pool (not the
process-wide default one), so several schemas can be served in one process.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool, descriptor_pb2, message_factory
from google.protobuf.message import Message

from xprotogen.compile_proto import descriptor_set
from xprotogen.schema import Schema
from xprotogen.targets.proto import (
    COMMON_PACKAGE,
    MODEL_RPCS,
    PACKAGE,
    ProtoApi,
    ProtoModel,
    build_proto_api,
    render_proto_files,
)

MessageClass = type[Message]

# The largest request a core reads (configurable: `core.max_message_mb`); bulk calls are cut
# by the client to fit. Replies may be larger: a List of every object is one reply.
DEFAULT_MESSAGE_LIMIT = 16 * 1024 * 1024
REPLY_LIMIT = 256 * 1024 * 1024

# How the details of UNAVAILABLE begin when the core is up but its own store is not, so a
# client does not report the core itself as unreachable.
CORE_STORE_DOWN = "the core's store is unavailable"

# Per-model methods: name prefix -> (request type, response type), as `xsgen proto` writes them.
STREAM = "stream "  # how `MODEL_RPCS` marks a stream of messages
MODEL_METHODS: dict[str, tuple[str, str]] = {
    prefix: (request, response) for prefix, request, response in MODEL_RPCS
}


@dataclass(frozen=True, slots=True)
class ModelApi:
    """A model's message classes and the full method paths of its RPCs."""

    model: ProtoModel
    service: str  # full service name, "xos.core"
    message: MessageClass
    plural: MessageClass
    update_request: MessageClass

    def path(self, prefix: str) -> str:
        return f"/{self.service}/{prefix}{self.model.name}"


class Protocol:
    """Message classes by name, and a `ModelApi` per model served."""

    def __init__(self, api: ProtoApi, descriptors: bytes) -> None:
        self.api = api
        self._pool = descriptor_pool.DescriptorPool()
        for file in descriptor_pb2.FileDescriptorSet.FromString(descriptors).file:
            self._pool.Add(file)
        self.models: dict[str, ModelApi] = {}
        for app in api.apps:
            for model in app.models:
                self.models[model.name] = ModelApi(
                    model=model,
                    service=app.service_full_name,
                    message=self.message_class(f"{PACKAGE}.{model.name}"),
                    plural=self.message_class(f"{PACKAGE}.{model.plural}"),
                    update_request=self.message_class(f"{PACKAGE}.{model.update_request}"),
                )
        self.services = [app.service_full_name for app in api.apps]

    def message_class(self, full_name: str) -> MessageClass:
        return message_factory.GetMessageClass(self._pool.FindMessageTypeByName(full_name))

    def common(self, name: str) -> MessageClass:
        return self.message_class(f"{COMMON_PACKAGE}.{name}")

    def empty(self) -> Message:
        return self.message_class("google.protobuf.Empty")()

    def enum_value(self, enum: str, number: int) -> Any:
        return self._pool.FindEnumTypeByName(f"{COMMON_PACKAGE}.{enum}").values_by_number.get(
            number
        )

    def type_of(self, model: ModelApi, spec: str) -> MessageClass:
        """The message class of a `MODEL_RPCS` type (of each message, for a stream)."""
        name = model.model.message_type(spec).removeprefix(STREAM)
        return self.message_class(name if "." in name else f"{PACKAGE}.{name}")

    def watch_path(self) -> str:
        """Every service has the RPCs of `SERVICE_RPCS`; the first service's are used."""
        return f"/{self.services[0]}/Watch"

    def version_path(self) -> str:
        return f"/{self.services[0]}/GetVersion"

    def latest_change_path(self) -> str:
        return f"/{self.services[0]}/LatestChange"


_CACHE: dict[str, Protocol] = {}
_CACHE_LOCK = threading.Lock()


def protocol_for(schema: Schema) -> Protocol:
    """The protocol of `schema`, compiled once per distinct API text in this process."""
    api = build_proto_api(schema)
    texts = render_proto_files(api)
    key = hashlib.sha256(
        "\0".join(f"{k}\0{v}" for k, v in sorted(texts.items())).encode()
    ).hexdigest()
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = _CACHE[key] = Protocol(api, descriptor_set(texts))
        return found
