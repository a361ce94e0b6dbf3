"""`xossynchronizer.model_policies.model_policy_tenantwithcontainer`: node schedulers and the
base policy for service instances that need a compute instance."""

from __future__ import annotations

from typing import Any

from .authoring import Policy


class Scheduler:
    """Picks a node for a slice's next compute instance: `pick()` gives `(node, parent)`."""

    def __init__(
        self, slice: Any, label: str | None = None, constrain_by_service_instance: bool = False
    ) -> None:
        self.slice = slice
        self.label = label
        self.constrain_by_service_instance = constrain_by_service_instance

    def pick(self) -> tuple[Any, Any]:
        raise NotImplementedError


class LeastLoadedNodeScheduler(Scheduler):
    """The node that runs the fewest compute service instances (of any kind); with `label`,
    only nodes carrying a `NodeLabel` of that name. Ties go to the lowest id."""

    def pick(self) -> tuple[Any, Any]:
        node_class = type(self.slice)._bound().model_class("Node")
        nodes = list(node_class.objects.all())
        if self.label:
            nodes = [n for n in nodes if any(l.name == self.label for l in _labels(n))]
        if not nodes:
            where = f" with label {self.label!r}" if self.label else ""
            raise Exception(
                f"LeastLoadedNodeScheduler: no node{where} to place an instance of slice {self.slice.name!r} on"
            )
        nodes.sort(key=lambda n: (_load(n), n.id))
        return nodes[0], None


def _labels(node: Any) -> list[Any]:
    manager = getattr(node, "nodelabels", None)
    return list(manager.all()) if manager is not None else []


def _load(node: Any) -> int:
    """How many compute service instances link to `node`."""
    from ...orm import Reverse

    binding = type(node)._bound()
    count = 0
    for attribute in type(node)._attributes.values():
        if not isinstance(attribute, Reverse):
            continue
        source = binding.classes.get(attribute.source)
        if source is None:
            continue
        if (
            source.model_name == "ComputeServiceInstance"
            or "ComputeServiceInstance" in source.ancestors
        ):
            count += len(getattr(node, attribute.name).all())
    return count


class TenantWithContainerPolicy(Policy):
    """Base for policies whose service instance needs a compute instance (XOS's legacy base).

    `handle_create`/`handle_update` call `manage_container(instance)`, which creates a compute
    service instance on the least loaded node for an instance that has none yet.
    """

    def handle_create(self, tenant: Any) -> None:
        self.manage_container(tenant)

    def handle_update(self, tenant: Any) -> None:
        self.manage_container(tenant)

    def manage_container(self, tenant: Any) -> None:
        if getattr(tenant, "compute_instance", None) is not None or tenant.deleted:
            return
        service = tenant.owner.leaf_model
        slice = service.slices.first()
        if slice is None:
            raise Exception(
                f"{tenant.model_name} id {tenant.id}: service {service.name!r} has no slice"
            )
        node = slice.default_node or LeastLoadedNodeScheduler(slice).pick()[0]
        compute_service = service.provider_services[0] if service.provider_services else None
        if compute_service is None:
            raise Exception(
                f"{tenant.model_name} id {tenant.id}: service {service.name!r} has no compute service to provide instances"
            )
        instance_class = compute_service.get_service_instance_class()
        instance = instance_class(
            slice=slice,
            owner=compute_service,
            image=slice.default_image,
            name=f"{tenant.model_name.lower()}-{tenant.id}",
            node=node,
        )
        instance.save()
        tenant.compute_instance = instance
        tenant.save(update_fields=["compute_instance"])
