"""11. One-shot artwork with Plex unreachable, and a CA file that is not a PEM certificate.

Artwork: a one-shot run with the Plex stand-in up publishes every thumb; with Plex down, the
service's first sync, and then a second one-shot run, must keep each item's thumb and
playable `plex_uri` from the broker's retained state (read for reconciliation anyway)
instead of publishing `"thumb": ""`. Items new since then get none; Plex's return fills
them in.

TLS: `MQTT_CA_FILE` naming a private key, a DER certificate, garbage, an empty file or
nothing must be a configuration error (exit 2) naming the setting and the expected format,
without a traceback; the real PEM CA connects (exit 0).
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

import pytest

from mosquitto import Mosquitto, _make_certificates
from plex_standin import PlexStandIn
from reliability_support import (
    broker_env,
    cli_argv,
    cli_env,
    expected_state,
    library_from_files,
    make_library,
    running_service,
    service_settings,
    wait_converged,
)
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.modes.oneshot import one_shot
from spotify_to_plex_mqtt.mqtt.session import BrokerError, BrokerSession
from spotify_to_plex_mqtt.plex import enricher as plexlink
from spotify_to_plex_mqtt.plex.client import PlexClient
from spotify_to_plex_mqtt.settings.broker_url import parse_broker_url
from spotify_to_plex_mqtt.settings.config import MqttSettings, load_settings

pytestmark = pytest.mark.broker

TOPICS = Topics()
TOKEN = "artwork-plex-token"  # noqa: S105 - a made-up token for the stand-in
DEADLINE = 10.0


def art(key: str, kind: str) -> str:
    return f"/library/metadata/{key}/thumb/9" if kind == "album" else \
        f"/playlists/{key}/composite/9"


async def test_plex_down_keeps_the_retained_artwork(fresh_mosquitto: Mosquitto,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    broker = fresh_mosquitto
    monkeypatch.setattr(plexlink, "PlexClient",
                        functools.partial(PlexClient, timeout=0.5, backoff_base=0.01))
    for name in ("PLEX_URL", "PLEX_TOKEN", "PLEX_VERIFY_TLS"):
        monkeypatch.delenv(name, raising=False)
    lib = make_library(tmp_path / "settings", 12, seed=31).write()
    settings = load_settings(["--one-shot", "--settings-dir", str(lib.root)],
                             broker_env(broker))
    async with PlexStandIn(token=TOKEN) as plex:
        thumbs = {key: art(key, kind) for key, kind in lib.keys.items()}
        for key, kind in lib.keys.items():
            (plex.albums if kind == "album" else plex.playlists)[key] = thumbs[key]
        # No server id in plex.json: it comes from /identity, so Plex down also hides it.
        (lib.root / "plex.json").write_text(json.dumps({"uri": plex.url, "token": TOKEN}))

        def expect() -> dict[str, bytes]:
            return expected_state(TOPICS, library_from_files(lib.root), thumbs=thumbs,
                                  server_id=plex.machine_id)

        assert await one_shot(settings) == 0
        await wait_converged(broker, TOPICS, expect, deadline=DEADLINE)
        await plex.stop()
        # The service's first sync, then a one-shot run: neither has artwork in memory.
        async with running_service(service_settings(broker, lib.root)) as run:
            await wait_converged(broker, TOPICS, expect, deadline=DEADLINE)
            last = run.service.plex.last
            assert last is not None
            assert last.error, "Plex was not down"
        assert await one_shot(settings) == 0
        await wait_converged(broker, TOPICS, expect, deadline=DEADLINE)


@pytest.fixture(scope="module")
def bad_ca_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ca-files")
    ca, _cert, key = _make_certificates(root / "tls")
    der = root / "ca.der"
    subprocess.run(["openssl", "x509", "-in", str(ca), "-outform", "der", "-out", str(der)],
                   check=True, capture_output=True)
    garbage = root / "garbage.pem"
    garbage.write_bytes(b"not a certificate\n\x00\xff")
    empty = root / "empty.pem"
    empty.write_bytes(b"")
    return {"a private key": key, "a DER certificate": der, "garbage": garbage,
            "an empty file": empty, "a missing file": root / "missing.pem"}


@pytest.mark.parametrize("case", ["a private key", "a DER certificate", "garbage",
                                  "an empty file", "a missing file"])
def test_a_ca_file_that_is_not_pem_is_a_configuration_error(
        mosquitto_tls_ws: Mosquitto, bad_ca_files: dict[str, Path], tmp_path: Path,
        case: str) -> None:
    broker = mosquitto_tls_ws
    make_library(tmp_path / "settings", 3, seed=32).write()
    env = cli_env({"MQTT_BROKER_URL": broker.tls_url, "MQTT_USERNAME": broker.username,
                   "MQTT_PASSWORD": broker.password, "MQTT_CA_FILE": str(bad_ca_files[case])})
    done = subprocess.run(cli_argv("--one-shot", "--settings-dir", str(tmp_path / "settings")),
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2, done.stderr
    assert "configuration error: MQTT_CA_FILE" in done.stderr
    assert "Traceback" not in done.stderr
    expected = "not a readable file" if case == "a missing file" else "PEM certificates"
    assert expected in done.stderr
    if case == "a private key":
        assert "private key" in done.stderr
        assert "PRIVATE KEY-----\n" not in done.stderr  # never quoted
    if case == "a DER certificate":
        assert "DER" in done.stderr


def test_the_real_pem_ca_connects(mosquitto_tls_ws: Mosquitto, tmp_path: Path) -> None:
    broker = mosquitto_tls_ws
    make_library(tmp_path / "settings", 3, seed=33).write()
    env = cli_env({"MQTT_BROKER_URL": broker.tls_url, "MQTT_USERNAME": broker.username,
                   "MQTT_PASSWORD": broker.password, "MQTT_CA_FILE": str(broker.ca_file),
                   "MQTT_TOPIC_PREFIX": "tls-check", "MQTT_DISCOVERY_PREFIX": "tls-check-ha"})
    done = subprocess.run(cli_argv("--one-shot", "--settings-dir", str(tmp_path / "settings")),
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


async def test_a_ca_file_spoiled_after_start_is_a_broker_error(
        mosquitto_tls_ws: Mosquitto, bad_ca_files: dict[str, Path]) -> None:
    # Checked at start; replaced by a key later, the next connect must fail as a broker
    # error (which the service retries and reports), not an `ssl.SSLError` traceback.
    settings = MqttSettings(url=parse_broker_url(mosquitto_tls_ws.tls_url),
                            ca_file=bad_ca_files["a private key"])
    with pytest.raises(BrokerError) as info:
        async with BrokerSession(settings):
            pass
    assert "MQTT_CA_FILE" in str(info.value)
    assert "PEM" in str(info.value)
