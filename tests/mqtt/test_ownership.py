"""Pure tests of ownership, node ids, refusal messages, the owner record, accept reports."""

from __future__ import annotations

import errno
import logging

import pytest

from spotify_to_plex_mqtt.core.bridge import bridge_configs
from spotify_to_plex_mqtt.core.discovery import Topics, node_id_for, render
from spotify_to_plex_mqtt.core.entities import Entity
from spotify_to_plex_mqtt.http.acceptor import ErrorReport, connection_limit
from spotify_to_plex_mqtt.mqtt.presence import OwnerRecord, taken_message
from spotify_to_plex_mqtt.mqtt.refusals import Refused, acl_root, describe


def _entity(ident: str) -> Entity:
    return Entity(id=ident, slug=ident.lower(), name=ident, category="Jazz",
                  type="spotify-playlist", media_content_type="playlist", plex_key="1")


def _messages(topics: Topics) -> dict[str, bytes]:
    return {**render(topics, [_entity("A1"), _entity("B2")]), **bridge_configs(topics)}


def test_the_default_prefix_keeps_the_original_node_id() -> None:
    assert node_id_for("spotify-to-plex") == "spotify_to_plex"
    assert node_id_for("home/s2p") == "home_s2p"


@pytest.mark.parametrize("prefix", ["spotify_to_plex", "Spotify-To-Plex", "spotify/to/plex"])
def test_a_prefix_that_slugs_like_the_default_gets_its_own_node_id(prefix: str) -> None:
    node = node_id_for(prefix)
    assert node.startswith("spotify_to_plex_")
    assert node != node_id_for("spotify-to-plex")
    assert node == node_id_for(prefix)  # stable across runs


@pytest.mark.parametrize("other", ["spotify-to-plex/kids", "spotify_to_plex",
                                   "spotify-to-plex-kids", "spotify-to-plex/items"])
def test_instances_never_claim_each_others_messages(other: str) -> None:
    default, second = Topics(), Topics(other)
    for topic, payload in _messages(second).items():
        assert not default.is_ours(topic, payload), topic
    for topic, payload in _messages(default).items():
        assert not second.is_ours(topic, payload), topic
        assert default.is_ours(topic, payload), topic


def test_the_owner_record_and_status_are_not_reconciled_as_entities() -> None:
    topics = Topics()
    assert not topics.is_ours(topics.owner, OwnerRecord.mine().encode())
    assert not topics.is_ours(topics.status, b"online")
    assert not topics.is_ours(f"{topics.scan_probe_prefix}abc/config", b"")


def test_a_refusal_names_the_topics_and_the_acl_lines() -> None:
    refused = [Refused("publish to", f"homeassistant/sensor/x{i}/config", "Not authorized")
               for i in range(7)] + [Refused("publish to", "s2p/items/a", "Not authorized")]
    text = describe(refused, ("s2p", "homeassistant"), "ha")
    assert "user ha publish to 8 topic(s) (Not authorized)" in text
    assert "homeassistant/sensor/x0/config" in text
    assert "and 3 more" in text
    assert "`user ha` then `topic readwrite homeassistant/#; topic readwrite s2p/#`" in text
    anonymous = describe(refused[:1], ("s2p", "homeassistant"), None)
    assert "anonymous clients" in anonymous
    assert "before any `user` line" in anonymous


def test_acl_root_is_the_prefix_a_topic_is_under() -> None:
    assert acl_root("homeassistant/+/+/config", ("s2p", "homeassistant")) == "homeassistant/#"
    assert acl_root("s2p", ("s2p",)) == "s2p/#"
    assert acl_root("elsewhere/x", ("s2p",)) == "elsewhere/x"


def test_the_owner_record_round_trips_and_garbage_is_no_record() -> None:
    me = OwnerRecord.mine()
    assert OwnerRecord.decode(me.encode()) == me
    for bad in (b"", b"online", b"[]", b'{"instance": 1}', b"\xff", b"[" * 100000):
        assert OwnerRecord.decode(bad) is None
    text = taken_message(Topics(), me)
    assert me.instance in text
    assert me.host in text
    assert "MQTT_TOPIC_PREFIX='spotify-to-plex'" in text


def test_accept_errors_are_reported_once_a_minute_with_a_count(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    report = ErrorReport(every=60.0, clock=lambda: now[0])
    error = OSError(errno.EMFILE, "Too many open files")
    with caplog.at_level(logging.WARNING):
        told = [report.note(error) for _ in range(5000)]
        now[0] += 61
        told.append(report.note(error))
    assert told.count(True) == 2
    assert len(caplog.records) == 2
    assert "(1 times since the last report)" in caplog.records[0].getMessage()
    assert "(5000 times since the last report)" in caplog.records[1].getMessage()
    assert report.total == 5001


def test_the_connection_cap_leaves_descriptors_for_the_rest() -> None:
    assert 8 <= connection_limit() <= 256
    assert connection_limit(10) <= 10


def test_a_rivals_record_replayed_on_subscribe_still_decides_who_yields() -> None:
    # Two started at once: the rival wrote its record after our scan but before our
    # subscription, so it reaches us as a retained message. It must count (else both stay);
    # only the record the scan found and took over (a silent instance) is ignored.
    from typing import Any, cast

    from spotify_to_plex_mqtt.mqtt.presence import Presence

    topics = Topics()
    taken: list[str] = []
    presence = Presence(topics, lambda _problem: None, taken.append)
    presence._session = cast(Any, object())  # held: the claim has begun
    rival = OwnerRecord("0" * 12, "elsewhere", 1, 0.0)  # a lower id than any of ours
    presence._scanned = None
    presence._on_owner(topics.owner, rival.encode(), True)
    assert len(taken) == 1
    assert "instance 000000000000" in taken[0]
    presence._scanned = rival.instance  # the one the scan found silent and took over
    presence._on_owner(topics.owner, rival.encode(), True)
    assert len(taken) == 1
