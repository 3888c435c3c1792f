"""Zero-setup demo: an embedded MQTT broker on loopback and a sample library, synced twice."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import socket
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from .app import one_shot
from .broker_url import BrokerUrl
from .config import Settings

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def copy_sample(target: Path) -> Path:
    """Copy the sample library shipped with the package into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in resources.files("spotify_to_plex_mqtt").joinpath("sample").iterdir():
        if entry.name.endswith(".json"):
            (target / entry.name).write_bytes(entry.read_bytes())
    return target


def _quiet_broker_logs() -> None:
    # amqtt 0.12 logs a spurious "unknown pending message" warning per retained QoS 1
    # delivery and chatty info lines; the demo's output should be ours.
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)


async def _start_broker(port: int) -> Any:
    try:
        from amqtt.broker import Broker
    except ImportError:
        raise SystemExit(
            "The demo needs the embedded broker: pip install 'spotify-to-plex-mqtt[demo]'"
        ) from None
    _quiet_broker_logs()
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                    {"allow_anonymous": True}},
    })
    await broker.start()
    return broker


async def run_demo(settings: Settings) -> int:
    """Sync the sample library (or --settings-dir, if given and present) into an embedded
    broker, twice: the second sync shows that nothing unchanged is published again."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="spotify-to-plex-demo-"))
    try:
        settings_dir = settings.settings_dir
        if not (settings_dir / "spotify_saved_items.json").exists():
            settings_dir = copy_sample(workdir / "settings")
        url = BrokerUrl(host="127.0.0.1", port=port, transport="tcp", tls=False)
        demo = dataclasses.replace(
            settings, settings_dir=settings_dir, one_shot=True, dry_run=False,
            mqtt=dataclasses.replace(settings.mqtt, url=url, username=None, password=None,
                                     ca_file=None, tls_insecure=False,
                                     protocol="3.1.1"),  # amqtt has no MQTT 5
        )
        broker = await _start_broker(port)
        try:
            print(f"Embedded MQTT broker on mqtt://127.0.0.1:{port}; library: {settings_dir}\n")
            print("First sync (a fresh broker, so everything is published):")
            code = await one_shot(demo, show_table=False)
            if code != 0:
                return code
            print("\nSecond sync (nothing changed, so nothing is published):")
            code = await one_shot(demo, show_table=True)
        finally:
            await broker.shutdown()
        print("\nPoint it at your own broker: MQTT_BROKER_URL=mqtt://<host>:1883 "
              "spotify-to-plex-mqtt --settings-dir <your Spotify-to-Plex settings>")
        return code
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
