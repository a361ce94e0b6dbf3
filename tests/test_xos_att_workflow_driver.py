"""att-workflow-driver, as published (Python 3 fixes only), on xsync.

Three Kafka event steps (ONU, authentication, DHCP) that share `helpers.py` through the
synchronizer's folder on sys.path, and two model policies that keep the subscriber's state,
the ONU's admin state and the subscriber's IP in line: `save_changed_fields`,
`self.logger` with keywords, `except IndexError` around `objects.get`. Events go through the
real Kafka broker, consumed by `--once`-style passes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from kafka_fixture import kafka_endpoint  # noqa: F401 - a fixture
from xos_support import build, records, runner_of, user_api, write_config
from xsync.engines.kafka_bus import KafkaEventProducer

TOPICS = ("onu.events", "authentication.events", "dhcp.events")


def skip_to_end(endpoint: str, group: str, topics: tuple[str, ...]) -> None:
    """Commit the end of each topic for `group`: events of earlier test runs are not ours."""
    from kafka import KafkaConsumer, TopicPartition  # type: ignore[import-untyped]
    from kafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

    from xsync.engines.kafka_bus import api_version

    producer = KafkaEventProducer(endpoint)
    try:
        # Makes sure each topic exists (a 0.9 broker creates topics on first use).
        producer.send_all("xsync-test-topic-maker", [(None, b"x")])
        for topic in topics:
            producer.send_all(topic, [(b"ignore", b'{"ignore": true}')])
    finally:
        producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=[endpoint],
        api_version=api_version(),
        group_id=group,
        enable_auto_commit=False,
    )
    try:
        partitions = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        consumer.commit({tp: OffsetAndMetadata(consumer.position(tp), "", -1) for tp in partitions})
    finally:
        consumer.close(autocommit=False)


class Bus:
    def __init__(self, endpoint: str) -> None:
        self.producer = KafkaEventProducer(endpoint)

    def send(self, topic: str, value: dict[str, Any]) -> None:
        self.producer.send_all(topic, [(None, json.dumps(value).encode())])


@pytest.fixture
def serial() -> str:
    return "ALPHe" + uuid.uuid4().hex[:8].upper()


@pytest.fixture
def setup(
    tmp_path: Path, kafka_endpoint: str, serial: str
) -> Iterator[tuple[Path, Bus, dict[str, Any]]]:  # noqa: F811
    group = f"att-workflow-driver-{uuid.uuid4().hex[:8]}"
    skip_to_end(kafka_endpoint, group, TOPICS)
    config = write_config(
        tmp_path,
        "att-workflow-driver",
        name=group,
        event_bus={"kind": "kafka", "endpoint": kafka_endpoint},
    )
    with user_api(config) as api:
        att = api.AttWorkflowDriverService(name="att-workflow")
        att.save()
        volt = api.VOLTService(name="volt")
        volt.save()
        olt = api.OLTDevice(name="olt", volt_service=volt, uplink="65536", device_type="openolt")
        olt.save()
        pon = api.PONPort(name="pon-1", port_no=1, olt_device=olt)
        pon.save()
        onu = api.ONUDevice(
            serial_number=serial,
            pon_port=pon,
            vendor="ALPHA",
            device_type="onu",
            admin_state="AWAITING",
        )
        onu.save()
        whitelist = api.AttWorkflowDriverWhiteListEntry(
            owner=att, serial_number=serial, pon_port_id=1, device_id="of:0001"
        )
        whitelist.save()
        rcord = api.RCORDService(name="rcord", access="voltha")
        rcord.save()
        bw = api.BandwidthProfile(name="default", cir=1, cbs=1, eir=1, ebs=1, air=1)
        bw.save()
        subscriber = api.RCORDSubscriber(
            name="subscriber",
            owner=rcord,
            onu_device=serial,
            tech_profile_id=64,
            upstream_bps=bw,
            downstream_bps=bw,
            status="pre-provisioned",
        )
        subscriber.save()
        made = {"onu": onu, "whitelist": whitelist, "subscriber": subscriber, "att": att}
    bus = Bus(kafka_endpoint)
    yield config, bus, made
    bus.producer.close()


def event(serial: str, **values: Any) -> dict[str, Any]:
    return {"serialNumber": serial, "deviceId": "of:0001", "portNumber": "16", **values}


def test_onu_auth_and_dhcp_events_drive_the_subscriber_through_its_workflow(
    setup: tuple[Path, Bus, dict[str, Any]], serial: str
) -> None:
    config, bus, made = setup
    runtime = build(config)
    try:
        runner = runner_of(runtime, events=True)
        bus.send("onu.events", event(serial, status="activated"))
        runner.run_once()
        runner.run_once()
        with user_api(config) as api:
            si = api.AttWorkflowDriverServiceInstance.objects.get(serial_number=serial)
            assert (si.uni_port_id, si.of_dpid, si.oper_onu_status) == (16, "of:0001", "ENABLED")
            assert si.owner_id == made["att"].id and si.no_sync is False
            assert si.admin_onu_state == "ENABLED"  # the whitelist matched
            assert si.status_message == "ONU has been validated - Awaiting Authentication"
            assert api.ONUDevice.objects.get(id=made["onu"].id).admin_state == "ENABLED"
            assert (
                api.RCORDSubscriber.objects.get(id=made["subscriber"].id).status == "awaiting-auth"
            )

        bus.send("authentication.events", event(serial, authenticationState="APPROVED"))
        runner.run_once()
        runner.run_once()
        with user_api(config) as api:
            si = api.AttWorkflowDriverServiceInstance.objects.get(serial_number=serial)
            assert si.authentication_state == "APPROVED"
            assert api.RCORDSubscriber.objects.get(id=made["subscriber"].id).status == "enabled"

        bus.send(
            "dhcp.events",
            event(
                serial, messageType="DHCPACK", ipAddress="10.1.1.5", macAddress="aa:bb:cc:dd:ee:ff"
            ),
        )
        runner.run_once()
        runner.run_once()
        with user_api(config) as api:
            si = api.AttWorkflowDriverServiceInstance.objects.get(serial_number=serial)
            assert (si.dhcp_state, si.ip_address, si.mac_address) == (
                "DHCPACK",
                "10.1.1.5",
                "aa:bb:cc:dd:ee:ff",
            )
            subscriber = api.RCORDSubscriber.objects.get(id=made["subscriber"].id)
            assert subscriber.mac_address == "aa:bb:cc:dd:ee:ff"
            (ip,) = records(api, "RCORDIpAddress")
            assert (ip.subscriber_id, ip.ip, ip.description) == (
                subscriber.id,
                "10.1.1.5",
                "DHCP Assigned IP Address",
            )
    finally:
        runtime.close()


def test_removing_the_whitelist_entry_disables_the_onu_and_the_entry_is_reaped(
    setup: tuple[Path, Bus, dict[str, Any]], serial: str
) -> None:
    config, bus, made = setup
    runtime = build(config)
    try:
        runner = runner_of(runtime, events=True)
        bus.send("onu.events", event(serial, status="activated"))
        runner.run_once()
        runner.run_once()
        with user_api(config) as api:
            entry = api.AttWorkflowDriverWhiteListEntry.objects.get(id=made["whitelist"].id)
            # The whitelist policy marked it: its delete policy must run before it is reaped.
            assert entry.backend_need_delete_policy is True
            entry.delete()
        runner.run_once()
        runner.run_once()
        with user_api(config) as api:
            si = api.AttWorkflowDriverServiceInstance.objects.get(serial_number=serial)
            assert si.admin_onu_state == "DISABLED" and si.status_message.startswith(
                "ONU not found in whitelist"
            )
            assert api.ONUDevice.objects.get(id=made["onu"].id).admin_state == "DISABLED"
            assert api.AttWorkflowDriverWhiteListEntry.deleted_objects.count() == 0  # reaped
    finally:
        runtime.close()


def test_an_event_for_an_unknown_onu_creates_the_service_instance_from_the_event(
    setup: tuple[Path, Bus, dict[str, Any]],
) -> None:
    config, bus, made = setup
    runtime = build(config)
    try:
        runner = runner_of(runtime, events=True)
        bus.send("onu.events", event("UNKNOWN1", status="disabled", portNumber="7"))
        runner.run_once()
    finally:
        runtime.close()
    with user_api(config) as api:
        si = api.AttWorkflowDriverServiceInstance.objects.get(serial_number="UNKNOWN1")
        assert (si.uni_port_id, si.oper_onu_status) == (7, "DISABLED")
