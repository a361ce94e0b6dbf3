"""The ORM over a real store (an SQLite file, and PostgreSQL when it is there).

Schema: core.xproto + simpleexampleservice.xproto + the hello example, so the tests use the
real lifecycle fields, links to base models, a many-to-many link and inherited models.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CORE_XPROTO, corpus_file
from pg import fresh_schema
from xprotogen.loader import load_schema
from xprotogen.schema import Schema
from xsync import ModelAccessor, connect
from xsync.orm import (
    FieldError,
    ModelObject,
    NotBound,
    ObjectDoesNotExist,
    ORMError,
    QuerySet,
    class_from_spec,
    model_spec,
)
from xsync.grpc.client import RemoteStore
from xsync.grpc.server import serve
from xsync.store import PermissionDenied, open_store
from xsync.store.chunks import CreateStreamError

HELLO = Path(__file__).resolve().parent.parent / "examples" / "hello" / "hello.xproto"


@lru_cache(maxsize=1)
def schema() -> Schema:
    return load_schema([CORE_XPROTO, corpus_file("simpleexampleservice"), HELLO])


@pytest.fixture(params=["sqlite", "postgresql", "grpc"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelAccessor]:
    """An accessor on an SQLite file, on PostgreSQL, or on a core served over gRPC (loopback)."""
    if request.param == "postgresql":
        with fresh_schema() as url, ModelAccessor(open_store(url, schema()), schema()) as accessor:
            yield accessor
        return
    store = open_store(f"sqlite:///{tmp_path / 'orm.db'}", schema())
    if request.param == "sqlite":
        with ModelAccessor(store, schema()) as accessor:
            yield accessor
        store.close()
        return
    server = serve(store, schema(), listen="127.0.0.1:0", username="admin", password="pw")
    try:
        remote = RemoteStore(server.endpoint, schema(), username="admin", password="pw")
        with ModelAccessor(remote, schema()) as accessor:
            yield accessor
    finally:
        server.stop(0)
        store.close()


def make_world(api: ModelAccessor, name: str = "earth") -> ModelObject:
    world = api.World(name=name)
    world.save()
    return world


def make_site(api: ModelAccessor, name: str = "mysite") -> ModelObject:
    site = api.Site(name=name, login_base=name, abbreviated_name=name)
    site.save()
    return site


# --- objects, defaults, saving ------------------------------------------------------------


def test_a_new_object_has_the_xproto_defaults_and_gets_an_id_when_saved(api: ModelAccessor) -> None:
    world = api.World(name="earth")
    assert world.id is None and world.pk is None
    assert (world.backend_status, world.backend_code, world.deleted, world.no_sync) == (
        "Provisioning in progress",
        0,
        False,
        False,
    )
    assert world.backend_register == "{}" and world.enacted is None
    world.save()
    assert isinstance(world.id, int) and world.pk == world.id
    assert isinstance(world.updated, float) and world.updated > 0
    assert world.leaf_model_name == "World" and world.model_name == "World"
    assert api.World.objects.get(id=world.id).name == "earth"


def test_every_lifecycle_field_reads_and_writes_as_an_attribute(api: ModelAccessor) -> None:
    sync = api.as_actor("synchronizer")
    world = make_world(api)
    mine = sync.World.objects.get(id=world.id)
    values = {
        "enacted": 1000.5,
        "policed": 1001.0,
        "backend_code": 2,
        "backend_status": "boom",
        "backend_register": '{"exponent": 1}',
        "policy_code": 1,
        "policy_status": "done",
        "no_sync": True,
        "no_policy": True,
        "lazy_blocked": True,
        "backend_need_delete": True,
        "backend_need_reap": True,
    }
    for name, value in values.items():
        setattr(mine, name, value)
    mine.save()
    again = api.World.objects.get(id=world.id)
    assert {name: getattr(again, name) for name in values} == values
    assert isinstance(again.changed_by_step, float)  # an important change made by a step
    assert again.changed_by_policy is None and again.deleted is False


def test_save_writes_only_the_fields_assigned_since_loading(api: ModelAccessor) -> None:
    world = make_world(api)
    first, stale = api.World.objects.get(id=world.id), api.World.objects.get(id=world.id)
    first.name = "mars"
    first.save()
    stale.synchronizer_step = "a plain attribute, as the engine attaches steps"
    stale.save()  # a stale copy that assigned no field overwrites nothing
    assert api.World.objects.get(id=world.id).name == "mars"
    assert stale.name == "mars"  # and it reads back what the store now holds


def test_update_fields_writes_only_those_and_keeps_the_rest_unsaved(api: ModelAccessor) -> None:
    sync = api.as_actor("synchronizer")
    world = sync.World.objects.get(id=make_world(api).id)
    world.backend_status = "OK"
    world.backend_code = 1
    world.save(update_fields=["backend_status"])
    stored = api.World.objects.get(id=world.id)
    assert (stored.backend_status, stored.backend_code) == ("OK", 0)
    assert world.backend_code == 1  # still assigned in memory
    world.save()
    assert api.World.objects.get(id=world.id).backend_code == 1


def test_update_fields_accepts_link_names(api: ModelAccessor) -> None:
    earth, mars = make_world(api, "earth"), make_world(api, "mars")
    country = api.Country(name="fr", world=earth)
    country.save()
    country.world = mars
    country.save(update_fields=["world"])
    assert api.Country.objects.get(id=country.id).world_id == mars.id


def test_a_user_save_stamps_updated_and_a_synchronizer_save_does_not(api: ModelAccessor) -> None:
    world = make_world(api)
    before = world.updated
    mine = api.as_actor("synchronizer").World.objects.get(id=world.id)
    mine.backend_status = "OK"
    mine.save(update_fields=["backend_status"])
    assert mine.updated == before
    mine.save(update_fields=["backend_status"], always_update_timestamp=True)
    assert mine.updated > before
    world.name = "renamed"
    world.save()
    assert world.updated > mine.updated


def test_the_actor_decides_who_may_write_feedback_state(api: ModelAccessor) -> None:
    world = make_world(api)
    world.backend_status = "OK"
    with pytest.raises(PermissionDenied, match="backend_status"):
        world.save()
    step_view = api.as_actor("synchronizer")
    assert step_view.actor == "synchronizer" and step_view.store is api.store
    mine = step_view.World.objects.get(id=world.id)
    mine.backend_status = "OK"
    mine.save()
    assert api.World.objects.get(id=world.id).backend_status == "OK"


def test_refresh_reloads_and_drops_unsaved_changes(api: ModelAccessor) -> None:
    world = make_world(api)
    other = api.World.objects.get(id=world.id)
    other.name = "changed elsewhere"
    other.save()
    world.name = "unsaved"
    world.refresh()
    assert world.name == "changed elsewhere"


# --- querying ---------------------------------------------------------------------------


def test_all_filter_exclude_get_first_and_count(api: ModelAccessor) -> None:
    for name in ("a", "b", "c"):
        make_world(api, name)
    World = api.World
    assert [w.name for w in World.objects.all()] == ["a", "b", "c"]
    assert [w.name for w in World.objects.filter(name="b")] == ["b"]
    assert [w.name for w in World.objects.exclude(name="b")] == ["a", "c"]
    assert [w.name for w in World.objects.filter(name__in=["a", "c"]).exclude(name="c")] == ["a"]
    assert World.objects.get(name="c").name == "c"
    first = World.objects.first()
    assert first is not None and first.name == "a"
    assert World.objects.filter(name="zzz").first() is None
    assert World.objects.count() == 3 and len(World.objects.filter(name__startswith="b")) == 1
    assert World.objects.filter(name="a").exists() and not World.objects.filter(name="q")
    assert [w.name for w in World.objects.order_by("-name")] == ["c", "b", "a"]
    assert World.objects.all()[1].name == "b"


def test_lookups_beyond_equality(api: ModelAccessor) -> None:
    sync = api.as_actor("synchronizer")
    for name, code in (("alpha", 0), ("Beta", 1), ("gamma", 2)):
        world = sync.World(name=name, backend_code=code)
        world.save()
    World = api.World
    assert [w.name for w in World.objects.filter(backend_code__gt=0)] == ["Beta", "gamma"]
    assert [w.name for w in World.objects.filter(backend_code__lte=1)] == ["alpha", "Beta"]
    assert [w.name for w in World.objects.filter(name__iexact="beta")] == ["Beta"]
    assert [w.name for w in World.objects.filter(name__icontains="MM")] == ["gamma"]
    assert [w.name for w in World.objects.filter(enacted__isnull=True)] == [
        "alpha",
        "Beta",
        "gamma",
    ]
    assert [w.name for w in World.objects.filter(pk__in=[World.objects.get(name="alpha").id])] == [
        "alpha"
    ]


def test_get_raises_the_models_own_exceptions(api: ModelAccessor) -> None:
    make_world(api, "twin")
    make_world(api, "twin")
    with pytest.raises(api.World.DoesNotExist, match="no World matches name='nope'"):
        api.World.objects.get(name="nope")
    with pytest.raises(api.World.MultipleObjectsReturned, match="more than one World"):
        api.World.objects.get(name="twin")
    assert issubclass(api.World.DoesNotExist, ObjectDoesNotExist)
    assert not issubclass(api.World.DoesNotExist, api.Country.DoesNotExist)


def test_unknown_fields_are_named_with_the_model(api: ModelAccessor) -> None:
    with pytest.raises(FieldError, match=r"^World has no field 'nmae' \(did you mean 'name'\?\)$"):
        api.World(nmae="x")
    with pytest.raises(FieldError, match=r"^World has no field 'nmae' \(did you mean 'name'\?\)$"):
        api.World.objects.filter(nmae="x")
    with pytest.raises(FieldError, match="unknown lookup 'startwith'"):
        api.World.objects.filter(name__startwith="x")
    world = make_world(api)
    with pytest.raises(
        AttributeError,
        match=r"World has no field 'backend_stauts' \(did you mean 'backend_status'\?\)",
    ):
        world.backend_stauts
    with pytest.raises(FieldError, match="update_fields: World has no field 'colour'"):
        world.save(update_fields=["colour"])
    with pytest.raises(FieldError, match="countries lists the Country objects"):
        api.World(countries=[])


def test_deleted_objects_are_soft_deleted_and_found_by_deleted_objects(api: ModelAccessor) -> None:
    world = make_world(api)
    country = api.Country(name="fr", world=world)
    country.save()
    world.delete()
    assert world.deleted is True
    assert api.World.objects.count() == 0
    assert [w.id for w in api.World.deleted_objects.all()] == [world.id]
    # the store cascades the soft delete through the required link
    assert [c.id for c in api.Country.deleted_objects.all()] == [country.id]
    assert country.deleted is False
    country.refresh()
    assert country.deleted is True


# --- links -------------------------------------------------------------------------------


def test_links_load_lazily_and_assigning_an_object_sets_the_id(api: ModelAccessor) -> None:
    earth, mars = make_world(api, "earth"), make_world(api, "mars")
    country = api.Country(name="fr", world=earth)
    assert country.world_id == earth.id
    country.save()
    loaded = api.Country.objects.get(id=country.id)
    assert loaded.world_id == earth.id
    assert loaded.world == earth and loaded.world is not earth and loaded.world.name == "earth"
    loaded.world = mars
    assert loaded.world_id == mars.id
    loaded.world_id = earth.id  # the cached World is dropped when the id changes
    assert loaded.world is not None and loaded.world.name == "earth"
    loaded.save()
    assert api.Country.objects.get(id=country.id).world_id == earth.id


def test_links_refuse_other_models_and_unsaved_objects(api: ModelAccessor) -> None:
    country = api.Country(name="fr")
    with pytest.raises(TypeError, match="Country.world links to a World"):
        country.world = make_site(api)
    with pytest.raises(ORMError, match="save the World before linking to it"):
        country.world = api.World(name="unsaved")


def test_a_link_to_a_base_model_accepts_derived_objects(api: ModelAccessor) -> None:
    service = api.SimpleExampleService(name="ses", service_message="hi")
    service.save()
    instance = api.SimpleExampleServiceInstance(owner=service, tenant_message="hello")
    instance.save()
    assert instance.owner is not None and instance.owner.model_name == "Service"
    assert instance.owner.leaf_model.model_name == "SimpleExampleService"
    listed = list(api.ServiceInstance.objects.all())
    assert [(o.model_name, o.id) for o in listed] == [("ServiceInstance", instance.id)]
    assert listed[0].leaf_model == instance
    assert [o.id for o in service.service_instances.all()] == [instance.id]


def test_reverse_accessors_list_the_linking_objects(api: ModelAccessor) -> None:
    earth, mars = make_world(api, "earth"), make_world(api, "mars")
    for name, world in (("fr", earth), ("de", earth), ("olympus", mars)):
        api.Country(name=name, world=world).save()
    assert [c.name for c in earth.countries.all()] == ["fr", "de"]
    assert [c.name for c in earth.countries.filter(name="de")] == ["de"]
    assert earth.countries.count() == 2 and mars.countries.count() == 1
    assert api.World(name="unsaved").countries.count() == 0
    with pytest.raises(AttributeError, match="set the link on the Country side"):
        earth.countries = []


def test_many_to_many_links_and_their_ids(api: ModelAccessor) -> None:
    site = make_site(api)
    slices = []
    for name in ("s1", "s2", "s3"):
        piece = api.Slice(name=name, site=site)
        piece.save()
        slices.append(piece)
    template = api.NetworkTemplate(name="private")
    template.save()
    network = api.Network(
        name="net", template=template, owner=slices[0], permitted_slices=slices[:2]
    )
    network.save()
    assert network.permitted_slices_ids == [slices[0].id, slices[1].id]
    assert [s.name for s in network.permitted_slices.all()] == ["s1", "s2"]
    network.permitted_slices_ids = [slices[2].id]
    network.save()
    loaded = api.Network.objects.get(id=network.id)
    assert [s.name for s in loaded.permitted_slices.all()] == ["s3"]
    assert [n.name for n in slices[2].availableNetworks.all()] == ["net"]
    assert slices[0].availableNetworks.count() == 0
    assert [n.name for n in api.Network.objects.filter(permitted_slices=slices[2])] == ["net"]


# --- identity and logging ----------------------------------------------------------------


def test_tologdict_model_name_equality_and_repr(api: ModelAccessor) -> None:
    world = make_world(api)
    assert world.tologdict() == {"model_name": "World", "pk": world.id, "name": "earth"}
    same = api.World.objects.get(id=world.id)
    assert same == world and hash(same) == hash(world) and len({same, world}) == 1
    assert repr(world) == f"<World id={world.id} name='earth'>"
    assert api.World(name="a") != api.World(name="a")


# --- the accessor -------------------------------------------------------------------------


def test_the_accessor_gives_model_classes_by_name(api: ModelAccessor) -> None:
    assert api.Site is api.get_model_class("Site") is api.models["Site"]
    assert "XOSBase" not in api.models  # abstract: there are no XOSBase objects
    with pytest.raises(AttributeError, match=r"no model named 'Sight'; the models are: .*Site"):
        api.Sight
    assert api.schema is schema()


def test_fetch_pending_selects_dirty_objects_and_deleted_ones(api: ModelAccessor) -> None:
    world = make_world(api)
    assert api.fetch_pending(["World"]) == [world]
    sync = api.as_actor("synchronizer")
    synced = sync.World.objects.get(id=world.id)
    synced.enacted = synced.updated
    synced.save(update_fields=["enacted"])
    assert api.fetch_pending(api.World) == []
    world.delete()
    assert api.fetch_pending(api.World, deletion=True) == [world]
    assert api.fetch_policies(api.World) == []
    assert api.obj_exists(world) and not api.obj_exists(api.World(name="x"))
    assert api.is_instance(api.Slice(name="x"), "XOSBase") and not api.is_type(world, "XOSBase")
    assert abs(api.now() - time.time()) < 5


def test_an_unbound_class_says_how_to_bind_it() -> None:
    unbound = class_from_spec(model_spec(schema().model("World")))
    with pytest.raises(NotBound, match="World is not bound to a store"):
        unbound.objects.first()


def test_connect_opens_the_store_the_config_names(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "core.xproto").write_text(CORE_XPROTO.read_text())
    (models / "hello.xproto").write_text(HELLO.read_text())
    (tmp_path / "sync.yaml").write_text("name: hello\nmodels_dir: models\n")
    with connect(tmp_path / "sync.yaml") as api:
        make_world(api)
        assert api.config is not None and api.config.name == "hello"
    assert (tmp_path / "hello.db").is_file()
    with connect(tmp_path / "sync.yaml", actor="synchronizer") as again:
        assert again.actor == "synchronizer"
        assert [w.name for w in again.World.objects.all()] == ["earth"]


@pytest.fixture(scope="module")
def roundtrip_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelAccessor]:
    path = tmp_path_factory.mktemp("roundtrip") / "orm.db"
    with ModelAccessor(open_store(f"sqlite:///{path}", schema()), schema()) as accessor:
        yield accessor


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80),
    latitude=st.floats(allow_nan=False, allow_infinity=False, width=32) | st.none(),
    hosts_nodes=st.booleans(),
)
def test_values_read_back_as_written(
    roundtrip_api: ModelAccessor, name: str, latitude: float | None, hosts_nodes: bool
) -> None:
    site = roundtrip_api.Site(
        name=name, login_base="b", abbreviated_name="a", latitude=latitude, hosts_nodes=hosts_nodes
    )
    site.save()
    loaded = roundtrip_api.Site.objects.get(id=site.id)
    assert (loaded.name, loaded.latitude, loaded.hosts_nodes) == (name, latitude, hosts_nodes)
    assert [s.id for s in roundtrip_api.Site.objects.filter(name=name) if s.id == site.id] == [
        site.id
    ]


def test_connect_reaches_a_remote_core_through_the_accessor_option(tmp_path: Path) -> None:
    hello = load_schema([CORE_XPROTO, HELLO])
    core_store = open_store(f"sqlite:///{tmp_path / 'core.db'}", hello)
    server = serve(core_store, hello, listen="127.0.0.1:0", username="admin", password="s3cret")
    try:
        models = tmp_path / "models"
        models.mkdir()
        (models / "core.xproto").write_text(CORE_XPROTO.read_text())
        (models / "hello.xproto").write_text(HELLO.read_text())
        (tmp_path / "password").write_text("s3cret\n")
        (tmp_path / "sync.yaml").write_text(
            "name: hello\nmodels_dir: models\n"
            f"accessor: {{endpoint: '{server.endpoint}', username: admin, password: '@password'}}\n"
        )
        with connect(tmp_path / "sync.yaml", actor="synchronizer") as api:
            assert isinstance(api.store, RemoteStore)
            world = make_world(api, "remote")
            world.backend_status = (
                "OK"  # feedback state: allowed, the accessor saves as synchronizer
            )
            world.save()
        assert world.id is not None and core_store.get("World", world.id)["backend_status"] == "OK"
        assert not (tmp_path / "hello.db").exists()
    finally:
        server.stop(0)
        core_store.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    codes=st.lists(st.integers(min_value=-3, max_value=3), min_size=1, max_size=6),
    bound=st.integers(min_value=-4, max_value=4),
    picked=st.sets(st.integers(min_value=-3, max_value=3)),
)
def test_lookups_select_what_python_would(
    roundtrip_api: ModelAccessor, codes: list[int], bound: int, picked: set[int]
) -> None:
    sync = roundtrip_api.as_actor("synchronizer")
    for code in codes:
        sync.World(name=f"w{code}", backend_code=code).save()
    World = roundtrip_api.World
    every = roundtrip_api.store.query("World")
    cases: list[tuple[QuerySet[Any], Callable[[dict[str, Any]], bool]]] = [
        (World.objects.filter(backend_code__gt=bound), lambda r: r["backend_code"] > bound),
        (World.objects.filter(backend_code__lte=bound), lambda r: r["backend_code"] <= bound),
        (
            World.objects.filter(backend_code__in=sorted(picked)),
            lambda r: r["backend_code"] in picked,
        ),
        (World.objects.exclude(backend_code=bound), lambda r: r["backend_code"] != bound),
        (
            World.objects.filter(name__startswith="w-").exclude(backend_code__in=sorted(picked)),
            lambda r: r["name"].startswith("w-") and r["backend_code"] not in picked,
        ),
    ]
    for selection, expected in cases:
        assert [w.id for w in selection] == [r["id"] for r in every if expected(r)]


def test_bulk_create_saves_every_object_in_one_call_and_gives_them_ids(api: ModelAccessor) -> None:
    world = make_world(api)
    countries = [api.Country(name=f"c{i}", world=world) for i in range(5)]
    saved = api.Country.objects.bulk_create(countries)
    assert saved == countries
    assert all(c.id is not None for c in countries)
    assert sorted(c.name for c in world.countries.all()) == [f"c{i}" for i in range(5)]
    assert countries[0].updated is not None


def test_create_stream_saves_a_prefix_the_same_on_every_backend(api: ModelAccessor) -> None:
    """Embedded (chunks by `xsync.store.chunks`) and over gRPC (`StreamCreate`) alike."""
    world = make_world(api)
    made = api.Country.objects.create_stream(
        (api.Country(name=f"c{i}", world=world) for i in range(7)), chunk=3
    )
    assert [c.name for c in made] == [f"c{i}" for i in range(7)]
    assert all(c.id is not None for c in made)
    countries = [api.Country(name=f"d{i}", world=world) for i in range(6)]
    countries[4] = api.Country(name="no world")
    with pytest.raises(CreateStreamError, match="item 4") as caught:
        api.Country.objects.create_stream(iter(countries), chunk=3)
    assert caught.value.index == 4 and len(caught.value.created) == 4
    assert [c.id is not None for c in countries] == [True] * 4 + [False] * 2
    assert sorted(c.name for c in world.countries.all()) == sorted(
        [f"c{i}" for i in range(7)] + [f"d{i}" for i in range(4)]
    )


def test_bulk_create_is_all_or_nothing_and_refuses_saved_or_foreign_objects(
    api: ModelAccessor,
) -> None:
    world = make_world(api)
    with pytest.raises(Exception, match="world"):
        api.Country.objects.bulk_create(
            [api.Country(name="ok", world=world), api.Country(name="no world")]
        )
    assert api.Country.objects.count() == 0
    with pytest.raises(ORMError, match="unsaved Country"):
        api.Country.objects.bulk_create([world])  # type: ignore[list-item]
    with pytest.raises(ORMError, match="unsaved Country"):
        api.Country.objects.bulk_create([api.Country.objects.create(name="a", world=world)])
