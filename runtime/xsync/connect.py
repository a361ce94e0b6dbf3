"""`xsync.connect`: from a config to model classes bound to a store.

The accessor is what steps and policies call `model_accessor` in XOS: model classes by name
(`api.Site`), plus the few helpers the XOS runtime offers (`fetch_pending`, `obj_exists`,
`now`). Every accessor saves as one actor; `as_actor("synchronizer")` gives a second view
of the same store whose saves count as synchronizer saves.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Iterable, Mapping

from xprotogen.schema import Schema

from .config import Config, load_config
from .orm import ModelObject, ORMError, bind_classes, class_from_spec, model_specs
from .store.base import Actor, PendingQuery, Store


class ModelAccessor:
    """Model classes bound to one store, saving as `actor`. Close it when done (or use `with`)."""

    def __init__(
        self,
        store: Store,
        schema: Schema,
        *,
        actor: Actor = "user",
        config: Config | None = None,
        owns_store: bool = True,
    ) -> None:
        self.store = store
        self.schema = schema
        self.actor: Actor = actor
        self.config = config
        self._owns_store = owns_store
        classes = {spec.name: class_from_spec(spec) for spec in model_specs(schema)}
        self._binding = bind_classes(classes, store, actor=actor)
        # The binding's own dict: classes installed later (a generated client) are what links load.
        self.models: dict[str, type[ModelObject]] = self._binding.classes
        self._views: dict[str, ModelAccessor] = {actor: self}

    def get_model_class(self, name: str) -> type[ModelObject]:
        """The class of model `name`; `AttributeError` naming the known models otherwise."""
        found = self.models.get(name)
        if found is None:
            raise AttributeError(
                f"no model named {name!r}; the models are: {', '.join(sorted(self.models))}"
            )
        return found

    def __getattr__(self, name: str) -> type[ModelObject]:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get_model_class(name)

    def as_actor(self, actor: Actor) -> ModelAccessor:
        """Another accessor on the same store whose saves are made as `actor`."""
        view = self._views.get(actor)
        if view is None:
            view = ModelAccessor(
                self.store, self.schema, actor=actor, config=self.config, owns_store=False
            )
            self._views[actor] = view
        return view

    def install(self, classes: Mapping[str, type[ModelObject]]) -> None:
        """Use these classes (a generated typed client) for their models, bound to this store.

        Each must describe a model of this accessor's schema with the same fields; a client
        generated from other xproto files is refused rather than half working.
        """
        for name, cls in classes.items():
            current = self.models.get(name)
            if current is None:
                raise ORMError(
                    f"the client's model {name} is not in this schema; regenerate the client"
                )
            if set(cls._attributes) != set(current._attributes):
                missing = sorted(set(current._attributes) ^ set(cls._attributes))
                raise ORMError(
                    f"the client's {name} differs from the schema in {', '.join(missing)}; regenerate the client"
                )
        for name, cls in classes.items():
            cls._binding = self._binding
            self.models[name] = cls

    # --- XOS model-accessor helpers -----------------------------------------------------------

    def fetch_pending(
        self,
        classes: type[ModelObject] | str | Iterable[type[ModelObject] | str],
        deletion: bool = False,
    ) -> list[ModelObject]:
        """Objects waiting for sync (or, with `deletion`, for backend deletion), class by class."""
        query = PendingQuery.DELETED_OBJECTS if deletion else PendingQuery.DIRTY_OBJECTS
        return self._pending(classes, query)

    def fetch_policies(
        self,
        classes: type[ModelObject] | str | Iterable[type[ModelObject] | str],
        deletion: bool = False,
    ) -> list[ModelObject]:
        """Objects waiting for their model policy (or its delete handler)."""
        query = PendingQuery.DELETED_POLICIES if deletion else PendingQuery.DIRTY_POLICIES
        return self._pending(classes, query)

    def _pending(
        self,
        classes: type[ModelObject] | str | Iterable[type[ModelObject] | str],
        query: PendingQuery,
    ) -> list[ModelObject]:
        if isinstance(classes, (str, type)):
            classes = [classes]
        found: list[ModelObject] = []
        for item in classes:
            cls = self.get_model_class(item if isinstance(item, str) else item.model_name)
            found.extend(
                cls.from_record(record) for record in self.store.pending(cls.model_name, query)
            )
        return found

    @staticmethod
    def obj_exists(obj: ModelObject) -> bool:
        return obj.id not in (None, 0)

    @staticmethod
    def now() -> float:
        """Seconds since the epoch, the unit of every timestamp field."""
        return time.time()

    @staticmethod
    def is_type(obj: ModelObject, name: str) -> bool:
        return obj.model_name == name

    @staticmethod
    def is_instance(obj: ModelObject, name: str) -> bool:
        """Whether `obj` is a `name`: its own model (a base view's leaf counts) or a base."""
        return name in obj.class_names.split(",")

    def has_model_class(self, name: str) -> bool:
        return name in self.models

    @staticmethod
    def obj_in_list(obj: ModelObject, objs: Iterable[ModelObject]) -> bool:
        """Whether an object with `obj`'s id is in `objs` (XOS compares ids only)."""
        return any(o.id == obj.id for o in objs)

    # XOS's accessor manages Django connections; a store here needs none of it.
    def reset_queries(self) -> None:
        pass

    def connection_close(self) -> None:
        pass

    def check_db_connection_okay(self) -> None:
        pass

    def journal_object(self, obj: ModelObject, action: str, msg: str | None = None) -> None:
        pass

    def create_obj(self, cls: type[ModelObject] | str, **fields: Any) -> ModelObject:
        """An unsaved object of `cls`."""
        model = self.get_model_class(cls if isinstance(cls, str) else cls.model_name)
        return model(**fields)

    # --- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store if this accessor opened it."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> ModelAccessor:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ModelAccessor actor={self.actor} models={len(self.models)}>"


def connect(
    config: Config | str | Path, *, actor: Actor = "user", migrated: bool = False
) -> ModelAccessor:
    """Open what the config names: its embedded `store`, or the remote core of its `accessor`.

    `migrated` lets models that break the store's data open it (see `open_store`).
    """
    from xprotogen.loader import load_schema

    if not isinstance(config, Config):
        config = load_config(config)
    # Service files alone are enough: the built-in core is read first when they need it.
    schema = load_schema(list(config.model_files), core="auto")
    store = open_configured_store(config, schema, migrated=migrated)
    return ModelAccessor(store, schema, actor=actor, config=config)


def plaintext_warning(config: Config) -> str | None:
    """A warning when the config sends the accessor's password in plaintext off this machine."""
    accessor = config.accessor
    if accessor is None or accessor.tls is not None or _is_loopback(accessor.endpoint):
        return None
    return (
        f"the core at {accessor.endpoint} is reached in plaintext: the password travels "
        "unencrypted (set accessor.tls)"
    )


def _is_loopback(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0].strip("[]") if ":" in endpoint else endpoint
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def open_configured_store(config: Config, schema: Schema, *, migrated: bool = False) -> Store:
    """The store the config asks for: a `RemoteStore` when it has an accessor, else its URL."""
    if config.accessor is not None:
        from .grpc.client import RemoteStore

        from .grpc.client import TlsOptions

        accessor = config.accessor
        tls = accessor.tls
        remote: Store = RemoteStore(
            accessor.endpoint,
            schema,
            username=accessor.username,
            password=accessor.password,
            tls=None if tls is None else TlsOptions(tls.ca, tls.cert, tls.key, tls.server_name),
        )
        return remote
    from .store import open_store

    assert config.store is not None  # load_config gives a default store when there is no accessor
    from .store.version import served_version

    return open_store(
        config.store, schema, core_version=served_version(config.core_version), migrated=migrated
    )
