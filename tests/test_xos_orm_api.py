"""The ORM API XOS synchronizers rely on, each with XOS's meaning.

`objects.get` raising what `except IndexError` catches, `save_changed_fields`, change
tracking, `tologdict`, `always_update_timestamp`, `backend_handle`, `class_names`, filters
that coerce values, convenience wrappers and the core's convenience methods, and
`InnocuousException`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from test_xos_compat import Folder, one_pass, run, service
from xsync import connect
from xsync.config import load_config
from xsync.orm import ObjectDoesNotExist
from xsync.runner import build_runtime
from xsync.store import InvalidArgument, PermissionDenied


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    return Folder(tmp_path)


@pytest.fixture
def api(folder: Folder) -> Iterator[Any]:
    with connect(folder.config()) as user:
        yield user


@pytest.fixture
def sync_api(folder: Folder) -> Iterator[Any]:
    with connect(folder.config(), actor="synchronizer") as accessor:
        yield accessor


# --- get and IndexError -----------------------------------------------------------------------


def test_get_by_id_of_a_missing_object_is_caught_as_orm_generic_object_not_found(
    folder: Folder,
) -> None:
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep
        from xossynchronizer.modelaccessor import DemoService, ModelLink
        from xosapi.orm import ORMGenericObjectNotFoundException

        LINK = ModelLink(DemoService, via="owner")
        FOUND = []

        class SyncDemo(SyncStep):
            observes = "DemoServiceInstance"

            def sync_record(self, o):
                try:
                    DemoService.objects.get(id=o.owner_id + 1000)
                except ORMGenericObjectNotFoundException as exc:
                    FOUND.append(str(exc))
        """,
    )
    config = folder.config()
    with connect(config) as api:
        service(api)
    module, _ = one_pass(config)
    assert module.FOUND == ["no DemoService matches id=1001"]
    assert (module.LINK.via, module.LINK.into) == ("owner", None)


def test_get_of_a_missing_object_is_caught_by_except_index_error(api: Any) -> None:
    try:
        api.DemoService.objects.get(name="nope")
    except IndexError as exc:
        assert isinstance(exc, api.DemoService.DoesNotExist)
        assert isinstance(exc, ObjectDoesNotExist) and isinstance(exc, LookupError)
        assert "no DemoService matches name='nope'" in str(exc)
    else:
        pytest.fail("get() found an object that does not exist")


# --- change tracking --------------------------------------------------------------------------


def test_change_tracking_of_a_new_object(api: Any) -> None:
    site = api.Site(name="mysite")
    assert site.is_new and site.diff == {}
    assert site.changed_fields == ["name"]
    assert not site.has_field_changed("name") and not site.has_field_changed("login_base")
    site.login_base = "bar"
    assert site.diff == {"login_base": (None, "bar")}
    assert set(site.changed_fields) == {"name", "login_base"}
    assert site.has_field_changed("login_base") and not site.has_field_changed("name")
    assert site.get_field_diff("login_base") == (None, "bar")


def test_change_tracking_of_a_loaded_object(api: Any) -> None:
    created = api.Site(name="mysite", login_base="foo", abbreviated_name="m")
    created.save()
    site = api.Site.objects.get(id=created.id)
    assert not site.is_new and site.diff == {} and site.changed_fields == []
    site.login_base = "bar"
    assert site.diff == {"login_base": ("foo", "bar")}
    assert site.changed_fields == ["login_base"]
    assert site.has_field_changed("login_base") and not site.has_field_changed("name")
    site.login_base = "foo"  # back to the loaded value: no change
    assert site.diff == {} and site.changed_fields == []
    site.name = "other"
    site.recompute_initial()
    assert site.diff == {} and not site.has_field_changed("name")


def test_save_changed_fields_writes_only_changes_and_nothing_when_none(
    api: Any, sync_api: Any
) -> None:
    svc, si = service(api)
    mine = sync_api.DemoServiceInstance.objects.get(id=si.id)
    before = mine.updated
    mine.port = 80  # the value it has: not a change
    mine.save_changed_fields(always_update_timestamp=True)
    assert api.DemoServiceInstance.objects.get(id=si.id).updated == before
    theirs = api.DemoServiceInstance.objects.get(id=si.id)
    theirs.name = "renamed by the user"
    theirs.save()
    mine.port = 8080
    mine.save_changed_fields(always_update_timestamp=True)
    stored = api.DemoServiceInstance.objects.get(id=si.id)
    assert stored.port == 8080 and stored.name == "renamed by the user"  # only `port` written
    assert stored.updated > theirs.updated  # always_update_timestamp moved it
    fresh = sync_api.DemoNote(text="new")
    fresh.save_changed_fields()
    assert fresh.id is not None


# --- saves ----------------------------------------------------------------------------------


def test_always_update_timestamp_and_backend_handle(api: Any, sync_api: Any) -> None:
    svc, si = service(api)
    mine = sync_api.DemoServiceInstance.objects.get(id=si.id)
    mine.backend_handle = "pod-1234"
    mine.save()
    after = api.DemoServiceInstance.objects.get(id=si.id)
    assert after.backend_handle == "pod-1234" and after.updated == si.updated
    mine.save(always_update_timestamp=True)
    assert api.DemoServiceInstance.objects.get(id=si.id).updated > si.updated
    after.backend_handle = "forged"
    with pytest.raises(PermissionDenied, match="backend_handle"):
        after.save()


def test_tologdict_names_the_object(api: Any) -> None:
    svc, si = service(api)
    assert si.tologdict() == {"model_name": "DemoServiceInstance", "pk": si.id, "name": "si1"}


def test_class_names_and_is_instance(api: Any, sync_api: Any) -> None:
    svc, si = service(api)
    assert si.class_names == "DemoServiceInstance,ServiceInstance,XOSBase"
    base_view = api.ServiceInstance.objects.get(id=si.id)
    assert base_view.class_names == "DemoServiceInstance,ServiceInstance,XOSBase"
    assert sync_api.is_instance(base_view, "DemoServiceInstance")
    assert "ServiceInstance" in base_view.class_names.split(",")


def test_filters_coerce_values_to_the_field_type(api: Any) -> None:
    svc, si = service(api)
    assert [o.id for o in api.DemoServiceInstance.objects.filter(port="80")] == [si.id]
    assert [o.id for o in api.DemoServiceInstance.objects.filter(owner_id=str(svc.id))] == [si.id]
    assert api.DemoServiceInstance.objects.get(id=str(si.id)).id == si.id
    assert [o.id for o in api.DemoServiceInstance.objects.filter(port__in=["80", "81"])] == [si.id]
    assert [o.id for o in api.DemoServiceInstance.objects.filter(port__gte="79")] == [si.id]
    with pytest.raises(InvalidArgument, match="DemoServiceInstance.port must be an integer"):
        list(api.DemoServiceInstance.objects.filter(port="eighty"))


# --- wrappers and the core's convenience methods ------------------------------------------------


def test_service_convenience_wrappers_are_on_every_object_the_code_gets(folder: Folder) -> None:
    folder.write(
        "models/convenience/demoserviceinstance.py",
        """
        from xosapi.orm import register_convenience_wrapper
        from xosapi.convenience.serviceinstance import ORMWrapperServiceInstance

        class ORMWrapperDemoServiceInstance(ORMWrapperServiceInstance):
            @property
            def url(self):
                return "http://%s:%d/" % (self.name, self.port)

            def owner_greeting(self):
                return self.stub.DemoService.objects.get(id=self.owner_id).leaf_model.greeting

        register_convenience_wrapper("DemoServiceInstance", ORMWrapperDemoServiceInstance)
        """,
    )
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep
        from xosapi.orm import ORMGenericObjectNotFoundException

        SEEN = []

        class SyncDemo(SyncStep):
            observes = "DemoServiceInstance"

            def sync_record(self, o):
                SEEN.append((o.url, o.owner_greeting(), o.serviceinstanceattribute_dict,
                             issubclass(ORMGenericObjectNotFoundException, Exception)))
        """,
    )
    config = folder.config()
    with connect(config) as api:
        service(api)
    module, _ = one_pass(config)
    assert module.SEEN == [("http://si1:80/", "hi", {}, True)]


@pytest.fixture
def core(folder: Folder) -> Iterator[Any]:
    """The synchronizer's accessor of an open runtime: the core's wrappers are applied."""
    runtime = build_runtime(load_config(folder.config()))
    try:
        yield runtime.accessor
    finally:
        runtime.close()


def test_service_dependencies_and_service_instance_class(core: Any) -> None:
    web = core.DemoService(name="web")
    web.save()
    db = core.DemoService(name="db")
    db.save()
    core.ServiceDependency(subscriber_service=web, provider_service=db).save()
    core.ServiceAttribute(service=web, name="tier", value="front").save()
    assert [s.id for s in web.provider_services] == [db.id]
    assert [s.id for s in db.subscribed_services] == [web.id]
    assert web.serviceattribute_dict == {"tier": "front"}
    as_base = core.Service.objects.get(id=web.id)
    assert as_base.get_service_instance_class_name() == "DemoServiceInstance"
    assert as_base.get_service_instance_class() is core.DemoServiceInstance
    from xsync.compat.xos import ORMGenericObjectNotFoundException

    lonely = core.LonelyService(name="plain")
    lonely.save()
    with pytest.raises(ORMGenericObjectNotFoundException, match="no model LonelyServiceInstance"):
        lonely.get_service_instance_class()


def test_westbound_instances_properties_acquire_and_validate_links(core: Any) -> None:
    web = core.DemoService(name="web")
    web.save()
    subscriber = core.DemoServiceInstance(name="subscriber", owner=web, port=1)
    subscriber.save()
    core.ServiceInstanceAttribute(service_instance=subscriber, name="s_tag", value="222").save()
    provider = web.acquire_service_instance(subscriber)
    assert provider.model_name == "DemoServiceInstance" and provider.owner_id == web.id
    assert [i.id for i in provider.westbound_service_instances] == [subscriber.id]
    assert [i.id for i in subscriber.eastbound_service_instances] == [provider.id]
    assert provider.get_westbound_service_instance_properties("port") == 1
    assert provider.get_westbound_service_instance_properties("s_tag") == "222"
    assert (
        provider.get_westbound_service_instance_properties("port", include_self=True)
        == provider.port
    )
    assert subscriber.serviceinstanceattribute_dict == {"s_tag": "222"}
    with pytest.raises(Exception, match="no westbound service instance has property 'nope'"):
        provider.get_westbound_service_instance_properties("nope")
    (link,) = web.validate_links(subscriber)
    assert link.provider_service_instance_id == provider.id
    other = core.DemoService(name="other")
    other.save()
    assert other.validate_links(subscriber) == []


def test_least_loaded_node_scheduler(core: Any) -> None:
    from xsync.compat.xos.tenantwithcontainer import LeastLoadedNodeScheduler

    site = core.Site(name="s", login_base="s", abbreviated_name="s")
    site.save()
    busy = core.Node(name="busy", site=site)
    busy.save()
    idle = core.Node(name="idle", site=site)
    idle.save()
    slice = core.Slice(name="s_slice", site=site)
    slice.save()
    node, parent = LeastLoadedNodeScheduler(slice).pick()
    assert node.id == busy.id and parent is None  # a tie goes to the lowest id
    label = core.NodeLabel(name="gpu")
    label.node = [idle]
    label.save()
    assert LeastLoadedNodeScheduler(slice, label="gpu").pick()[0].id == idle.id
    with pytest.raises(Exception, match="no node with label 'tpu'"):
        LeastLoadedNodeScheduler(slice, label="tpu").pick()


# --- exceptions and feedback state -------------------------------------------------------------


def test_innocuous_exception_keeps_code_1_and_deferred_keeps_code_0(folder: Folder) -> None:
    folder.write(
        "steps/sync_demo.py",
        """
        from xossynchronizer.steps.syncstep import SyncStep, InnocuousException, DeferredException

        class SyncDemo(SyncStep):
            observes = "DemoServiceInstance"

            def sync_record(self, o):
                if o.port == 80:
                    raise InnocuousException("waiting for the pod, nothing wrong")
                raise DeferredException("later")
        """,
    )
    config = folder.config()
    with connect(config) as api:
        svc, si = service(api)
        api.DemoServiceInstance(name="si2", owner=svc, port=81).save()
    one_pass(config)
    with connect(config) as api:
        first = api.DemoServiceInstance.objects.get(port=80)
        second = api.DemoServiceInstance.objects.get(port=81)
    assert first.backend_code == 1 and first.backend_status.endswith(
        "waiting for the pod, nothing wrong"
    )
    assert first.enacted is None  # not synced: retried
    assert second.backend_code == 0 and second.backend_status.endswith("later")


def test_a_policy_may_write_feedback_state_and_marks_the_object_for_sync(folder: Folder) -> None:
    folder.write(
        "model_policies/model_policy_demo.py",
        """
        from xossynchronizer.model_policies.policy import Policy
        from xossynchronizer.modelaccessor import DemoNote

        class DemoPolicy(Policy):
            model_name = "DemoServiceInstance"

            def handle_create(self, si):
                si.color = "green"  # feedback state: XOS lets a policy write it
                si.save_changed_fields()
                note = DemoNote.objects.get(text="by the user")
                note.text = "changed by the policy"
                note.save()
        """,
    )
    config = folder.config()
    with connect(config) as api:
        svc, si = service(api)
        api.DemoNote(text="by the user").save()
    run(config)
    with connect(config) as api:
        stored = api.DemoServiceInstance.objects.get(id=si.id)
        note = api.DemoNote.objects.get(text="changed by the policy")
    assert stored.color == "green" and stored.policy_status == "done"
    assert stored.changed_by_policy is not None and stored.updated == si.updated
    # A class imported at module level saves as the policy too (XOS decides by thread).
    assert note.changed_by_policy is not None and note.changed_by_step is None


def test_tenant_with_container_policy_places_a_compute_instance(folder: Folder) -> None:
    folder.write(
        "model_policies/model_policy_demo.py",
        """
        from xossynchronizer.model_policies.model_policy_tenantwithcontainer import (
            TenantWithContainerPolicy,
        )

        class DemoTenantPolicy(TenantWithContainerPolicy):
            model_name = "DemoServiceInstance"
        """,
    )
    config = folder.config()
    with connect(config) as api:
        site = api.Site(name="s", login_base="s", abbreviated_name="s")
        site.save()
        busy = api.Node(name="busy", site=site)
        busy.save()
        idle = api.Node(name="idle", site=site)
        idle.save()
        image = api.Image(name="img", kind="container")
        image.save()
        compute = api.DemoCompute(name="compute")
        compute.save()
        svc = api.DemoService(name="demo")
        svc.save()
        api.ServiceDependency(subscriber_service=svc, provider_service=compute).save()
        slice = api.Slice(name="s_demo", site=site, service=svc, default_image=image)
        slice.save()
        api.DemoComputeInstance(
            name="already there", owner=compute, slice=slice, image=image, node=busy
        ).save()
        si = api.DemoServiceInstance(name="tenant", owner=svc)
        si.save()
    run(config)
    with connect(config) as api:
        placed = api.DemoComputeInstance.objects.get(name=f"demoserviceinstance-{si.id}")
        assert (placed.node_id, placed.slice_id, placed.owner_id, placed.image_id) == (
            idle.id,
            slice.id,
            compute.id,
            image.id,
        )
        assert api.DemoServiceInstance.objects.get(id=si.id).compute_instance_id == placed.id
