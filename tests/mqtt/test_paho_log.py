"""aiomqtt's log lines about late broker answers (pure: log records only)."""

from __future__ import annotations

import logging

import pytest

from spotify_to_plex_mqtt.mqtt.session import PAHO_LOG


def _late_unsuback() -> None:
    pending: dict[int, object] = {}
    try:
        pending.pop(7)
    except KeyError:
        PAHO_LOG.exception('Unexpected message ID "%d" in on_unsubscribe callback', 7)


def test_a_late_unsuback_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    _late_unsuback()
    PAHO_LOG.error("Connection refused")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "Connection refused")]


def test_a_late_unsuback_is_a_debug_line_without_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _late_unsuback()
    [record] = caplog.records
    assert (record.levelname, record.exc_info) == ("DEBUG", None)
    assert "Traceback" not in caplog.text
