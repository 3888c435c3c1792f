"""10. Refusals: a Mosquitto ACL denies some of our topics; the service must say so.

The service connects as `svc`, whom the ACL restricts; the test's own clients connect as the
default account, which may read and write everything. MQTT 5 (the default, `auto`) reports
refused publishes in the PUBACK; a denied read is silent in both protocols and is found by
a probe. A broker without MQTT 5 (amqtt) gets 3.1.1.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from mosquitto import DEFAULT_USERNAME, Mosquitto, retained
from reliability_support import cli_argv, cli_env, make_library, running_service, service_settings
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.engine.events import SyncFailed
from spotify_to_plex_mqtt.modes.demo import _start_broker
from spotify_to_plex_mqtt.modes.oneshot import one_shot
from spotify_to_plex_mqtt.settings.broker_url import BrokerUrl
from spotify_to_plex_mqtt.settings.config import load_settings

pytestmark = pytest.mark.broker

SVC = ("svc", "svc-Pw-4411")
EVERYTHING = [f"user {DEFAULT_USERNAME}", "topic readwrite #", ""]


def acl_broker(make_mosquitto: Callable[..., Mosquitto], *lines: str) -> Mosquitto:
    """A broker of the test's own whose ACL gives `svc` only `lines`."""
    return make_mosquitto(acl=[*EVERYTHING, f"user {SVC[0]}", *lines], extra_users=[SVC])


def svc_env(broker: Mosquitto, **extra: str) -> dict[str, str]:
    return {"MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": SVC[0],
            "MQTT_PASSWORD": SVC[1], **extra}


def one_shot_cli(broker: Mosquitto, root: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_argv("--settings-dir", str(root), "--one-shot"),
                          env=cli_env(svc_env(broker, **extra)), capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("protocol", ["auto", "5"])
def test_a_refused_publish_fails_the_sync_and_names_the_acl_line(
        make_mosquitto: Callable[..., Mosquitto], tmp_path: Path, protocol: str) -> None:
    broker = acl_broker(make_mosquitto, "topic readwrite spotify-to-plex/#",
                        "topic readwrite homeassistant/#",
                        "topic deny homeassistant/binary_sensor/#")
    make_library(tmp_path, 10, seed=5).write()
    denied = "homeassistant/binary_sensor/spotify_to_plex_bridge_problem/config"
    for _ in range(2):  # the second run is refused again, and says so again
        done = one_shot_cli(broker, tmp_path, MQTT_PROTOCOL=protocol)
        output = done.stdout + done.stderr
        assert done.returncode == 1, output
        assert denied in output, output
        assert "user svc" in output, output
        assert "topic readwrite homeassistant/#" in output, output
        assert output.count(denied) == 1, output  # once per run, not per message
    assert denied not in retained(broker, ["homeassistant/#"])


@pytest.mark.parametrize("protocol", ["3.1.1", "auto"])
def test_a_denied_read_of_the_discovery_prefix_is_reported_not_republished(
        make_mosquitto: Callable[..., Mosquitto], tmp_path: Path, protocol: str) -> None:
    # svc may write configs but not read them back: every config would look missing, and
    # configs of items removed while the service was stopped would stay as ghosts.
    broker = acl_broker(make_mosquitto, "topic readwrite spotify-to-plex/#",
                        "topic write homeassistant/#")
    make_library(tmp_path, 10, seed=6).write()
    done = one_shot_cli(broker, tmp_path, MQTT_PROTOCOL=protocol)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "homeassistant/+/+/config" in output, output
    assert "topic readwrite homeassistant/#" in output, output
    assert retained(broker, ["homeassistant/#"]) == {}, "configs were republished blindly"


async def test_a_refused_sync_is_not_retried_in_a_loop(
        make_mosquitto: Callable[..., Mosquitto], tmp_path: Path) -> None:
    broker = acl_broker(make_mosquitto, "topic readwrite spotify-to-plex/#",
                        "topic readwrite homeassistant/#", "topic deny homeassistant/button/#")
    make_library(tmp_path, 10, seed=7).write()
    settings = service_settings(broker, tmp_path, env=svc_env(broker))
    async with running_service(settings, ready=False) as run:
        await run.wait_for(lambda: bool(run.of(SyncFailed)), "the refused sync")
        failure = run.of(SyncFailed)[0]
        assert "homeassistant/button/spotify_to_plex_bridge_refresh/config" in failure.error
        assert failure.retry_in is None  # not retried: it would be refused again
        assert run.service.scheduler.pending == ()
        assert not run.service.status.healthy


async def test_a_refused_online_is_reported_by_health(
        make_mosquitto: Callable[..., Mosquitto], tmp_path: Path) -> None:
    broker = acl_broker(make_mosquitto, "topic deny spotify-to-plex/status",
                        "topic readwrite spotify-to-plex/#", "topic readwrite homeassistant/#")
    make_library(tmp_path, 5, seed=8).write()
    settings = service_settings(broker, tmp_path, "--http-port", "0", env=svc_env(broker))
    async with running_service(settings) as run:
        http = run.service.http
        assert http is not None
        async with aiohttp.ClientSession() as client, \
                client.get(f"{http.url}/health") as answer:
            body = await answer.json()
        assert answer.status == 503, body
        assert "spotify-to-plex/status" in body["reason"], body
        assert "unavailable" in body["reason"], body


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_broker_without_mqtt_5_gets_3_1_1(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = _free_port()
    broker = await _start_broker(port)  # amqtt: MQTT 3.1.1 only
    try:
        make_library(tmp_path, 5, seed=9).write()
        settings = load_settings(["--settings-dir", str(tmp_path), "--one-shot"],
                                 {"MQTT_BROKER_URL": f"mqtt://127.0.0.1:{port}"})
        assert settings.mqtt.url == BrokerUrl(host="127.0.0.1", port=port, transport="tcp",
                                              tls=False)
        with caplog.at_level(logging.INFO):
            assert await asyncio.wait_for(one_shot(settings), 60) == 0
        assert "does not speak MQTT 5" in caplog.text
        assert Topics().status
    finally:
        await broker.shutdown()
