"""XOS's ORM convenience wrappers: `register_convenience_wrapper` and the core's own.

A wrapper is a class of extra methods for a model's objects (`Service.provider_services`,
a service's `models/convenience/*.py`). XOS picks wrappers by the object's class names; here
each model class is replaced, once the wrappers are known, by a subclass whose bases are the
wrappers of its model and of its xproto bases, most derived first. Inside a wrapper, `self`
is the model object, `self.stub.<Model>` reaches any model class, and `super()` works.
"""

from __future__ import annotations

import threading
import types
from typing import Any, Iterable, MutableMapping

from ...orm import ModelObject, ObjectDoesNotExist

# XOS's ORM raises this when `objects.get(id=...)` finds nothing, and CORD code catches it
# there; here that miss is xsync's `DoesNotExist`, so the name is that class: catching it
# catches every model's `DoesNotExist`, and code that raises it raises one.
ORMGenericObjectNotFoundException = ObjectDoesNotExist


class _Stub:
    """`self.stub`: the bound model classes by name, as XOS's client stub offers them."""

    def __init__(self, obj: ModelObject) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> type[ModelObject]:
        if name.startswith("_"):
            raise AttributeError(name)
        return type(self._obj)._bound().model_class(name)


class ORMWrapper:
    """Base of every convenience wrapper; mixed into model classes, so `self` is the object."""

    @property
    def stub(self) -> _Stub:
        return _Stub(self)  # type: ignore[arg-type]

    @property
    def self_content_type_id(self) -> str:
        return str(getattr(self, "model_name", type(self).__name__))


class _Registry:
    lock = threading.Lock()
    wrappers: dict[str, type] = {}


def register_convenience_wrapper(class_name: str, wrapper: type) -> None:
    """Use `wrapper`'s methods on objects of `class_name` and of its subclasses."""
    with _Registry.lock:
        _Registry.wrappers[class_name] = wrapper


def registered_wrappers() -> dict[str, type]:
    with _Registry.lock:
        return dict(_Registry.wrappers)


def reset_wrappers(wrappers: dict[str, type]) -> None:
    with _Registry.lock:
        _Registry.wrappers = dict(wrappers)


def apply_wrappers(classes: MutableMapping[str, type[ModelObject]]) -> None:
    """Replace each class of `classes` by a subclass that carries its wrappers (in place)."""
    wrappers = registered_wrappers()
    for name, cls in list(classes.items()):
        base = getattr(cls, "_xos_unwrapped", cls)
        chosen = _most_derived_first(
            wrappers[n] for n in (base.model_name, *base.ancestors) if n in wrappers
        )
        if not chosen:
            classes[name] = base
            continue
        wrapped = types.new_class(
            base.__name__,
            (*chosen, base),
            {"model": base.model_name, "ancestors": base.ancestors},
            lambda body: body.update(
                {"__doc__": base.__doc__, "__module__": base.__module__, "_xos_unwrapped": base}
            ),
        )
        classes[name] = wrapped


def _most_derived_first(found: Iterable[type]) -> list[type]:
    chosen: list[type] = []
    for wrapper in found:
        if any(issubclass(earlier, wrapper) for earlier in chosen):
            continue  # already in the MRO of a more derived wrapper
        chosen.append(wrapper)
    return chosen


# --- the XOS core's convenience methods ------------------------------------------------------


def _leaf(obj: Any) -> Any:
    return obj.leaf_model if obj is not None else None


class ORMWrapperService(ORMWrapper):
    """What the XOS core adds to every `Service`."""

    @property
    def serviceattribute_dict(self) -> dict[str, Any]:
        """`{name: value}` of the service's `ServiceAttribute`s."""
        return {a.name: a.value for a in self.serviceattributes.all()}  # type: ignore[attr-defined]

    @property
    def provider_services(self) -> list[Any]:
        """The services this one depends on (the providers of its `ServiceDependency`s)."""
        return [_leaf(d.provider_service) for d in self.subscribed_dependencies.all()]  # type: ignore[attr-defined]

    @property
    def subscribed_services(self) -> list[Any]:
        """The services that depend on this one (the subscribers of its dependencies)."""
        return [_leaf(d.subscriber_service) for d in self.provided_dependencies.all()]  # type: ignore[attr-defined]

    def get_service_instance_class_name(self) -> str:
        """By convention, the leaf service model's name with `Instance` appended."""
        leaf = self.leaf_model  # type: ignore[attr-defined]
        return f"{leaf.model_name}Instance"

    def get_service_instance_class(self) -> type[ModelObject]:
        name = self.get_service_instance_class_name()
        binding = type(self)._bound()  # type: ignore[attr-defined]
        if name not in binding.classes:
            raise ORMGenericObjectNotFoundException(
                f"{self.leaf_model.model_name} id {self.id}: no model {name} "  # type: ignore[attr-defined]
                f"(its service instance class) in this synchronizer's models"
            )
        found: type[ModelObject] = binding.model_class(name)
        return found

    def acquire_service_instance(self, subscriber_service_instance: Any) -> Any:
        """A new service instance of this service, linked to `subscriber_service_instance`."""
        instance_class = self.get_service_instance_class()
        subscriber = _leaf(subscriber_service_instance)
        instance = instance_class(
            owner=self,
            name=f"{instance_class.model_name} for {subscriber.model_name} {subscriber.id}",
        )
        instance.save()
        self.stub.ServiceInstanceLink(
            provider_service_instance=instance,
            subscriber_service_instance=subscriber_service_instance,
        ).save()
        return instance

    def validate_links(self, subscriber_service_instance: Any) -> list[Any]:
        """The subscriber's links to instances of this service; links to gone instances are
        deleted on the way."""
        valid = []
        for link in subscriber_service_instance.subscribed_links.all():
            provider_id = link.provider_service_instance_id
            provider = self.stub.ServiceInstance.objects.filter(id=provider_id).first()
            if provider is None:
                link.delete()
                continue
            if provider.owner_id == self.id:  # type: ignore[attr-defined]
                valid.append(link)
        return valid


class ORMWrapperServiceInstance(ORMWrapper):
    """What the XOS core adds to every `ServiceInstance`."""

    @property
    def serviceinstanceattribute_dict(self) -> dict[str, Any]:
        """`{name: value}` of the instance's `ServiceInstanceAttribute`s."""
        return {a.name: a.value for a in self.service_instance_attributes.all()}  # type: ignore[attr-defined]

    @property
    def westbound_service_instances(self) -> list[Any]:
        """The instances subscribed to this one (towards the subscriber), as leaf models."""
        return [
            _leaf(link.subscriber_service_instance)
            for link in self.provided_links.all()  # type: ignore[attr-defined]
            if link.subscriber_service_instance_id is not None
        ]

    @property
    def eastbound_service_instances(self) -> list[Any]:
        """The instances this one subscribes to (towards the network), as leaf models."""
        return [
            _leaf(link.provider_service_instance)
            for link in self.subscribed_links.all()  # type: ignore[attr-defined]
            if link.provider_service_instance_id is not None
        ]

    def get_westbound_service_instance_properties(
        self, prop_name: str, include_self: bool = False
    ) -> Any:
        """`prop_name` from the nearest instance westbound of this one that has it (a field,
        or a `ServiceInstanceAttribute`), searched breadth first; this one first with
        `include_self`. Raises when no westbound instance has it."""
        seen: set[int] = set()
        queue: list[Any] = [self] if include_self else list(self.westbound_service_instances)
        while queue:
            instance = queue.pop(0)
            if instance.id in seen:
                continue
            seen.add(instance.id)
            if prop_name in type(instance)._attributes:
                return getattr(instance, prop_name)
            attributes = instance.serviceinstanceattribute_dict
            if prop_name in attributes:
                return attributes[prop_name]
            queue.extend(instance.westbound_service_instances)
        raise ORMGenericObjectNotFoundException(
            f"{self.model_name} id {self.id}: no westbound service instance has "  # type: ignore[attr-defined]
            f"property {prop_name!r}"
        )


CORE_WRAPPERS: dict[str, type] = {
    "Service": ORMWrapperService,
    "ServiceInstance": ORMWrapperServiceInstance,
}
