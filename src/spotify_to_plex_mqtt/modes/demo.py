"""Zero-setup demo: an embedded MQTT broker on loopback and a sample library, synced twice."""

from __future__ import annotations

import dataclasses
import logging
import socket
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from ..settings.broker_url import BrokerUrl
from ..settings.config import Settings
from .demo_show import RETAINED_DUMP, dump_retained, show_broker
from .oneshot import one_shot

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


def _port(serve: bool) -> int:
    """MQTT's own port when serving and it is free (what Home Assistant suggests), else any."""
    if serve:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", 1883))
            except OSError:
                pass
            else:
                return 1883
    return free_port()


def _demo_settings(settings: Settings, settings_dir: Path, port: int) -> Settings:
    url = BrokerUrl(host="127.0.0.1", port=port, transport="tcp", tls=False)
    return dataclasses.replace(
        settings, settings_dir=settings_dir, one_shot=True, dry_run=False,
        mqtt=dataclasses.replace(settings.mqtt, url=url, username=None, password=None,
                                 ca_file=None, tls_insecure=False,
                                 protocol="3.1.1"),  # amqtt has no MQTT 5
    )


async def _two_syncs(demo: Settings) -> int:
    print("First sync (a fresh broker, so everything is published):")
    code = await one_shot(demo, show_table=False)
    if code != 0:
        return code
    print("\nSecond sync (nothing changed, so nothing is published):")
    code = await one_shot(demo, show_table=True)
    if code == 0:
        await show_broker(demo)
    return code


async def _serve(demo: Settings) -> int:
    """The service against the embedded broker, with its HTTP API, until Ctrl-C."""
    from ..engine.events import EventBus, Started
    from ..service.eventlog import log_event
    from ..service.service import Service

    bus = EventBus()
    bus.listen(log_event)
    service = Service(dataclasses.replace(demo, one_shot=False), bus)

    def banner(event: object) -> None:
        if isinstance(event, Started):
            url = demo.mqtt.url
            assert url is not None
            print(f"\nServing until Ctrl-C.\n"
                  f"  MQTT broker for Home Assistant's MQTT integration: host {url.host}, "
                  f"port {url.port}, no username or password (loopback only)\n"
                  f"  HTTP API: {service.http.url if service.http else '(off: --no-http)'}"
                  f"/status\n"
                  f"  Edit {demo.settings_dir / 'spotify_saved_items.json'} (a label) and "
                  f"watch it be republished.", flush=True)

    bus.listen(banner)
    return await service.run()


async def run_demo(settings: Settings) -> int:
    """Sync the sample library (or --settings-dir, if given and present) into an embedded
    broker, twice: the second sync shows that nothing unchanged is published again. With
    `serve`, the service then keeps running against that broker until Ctrl-C.

    The working directory (the sample library, the ledger, the broker's retained messages
    as JSON) is kept, and named, so that it can be inspected afterwards."""
    port = _port(settings.serve)
    workdir = Path(tempfile.mkdtemp(prefix="spotify-to-plex-demo-"))
    settings_dir = settings.settings_dir
    if not (settings_dir / "spotify_saved_items.json").exists():
        settings_dir = copy_sample(workdir / "settings")
    demo = _demo_settings(settings, settings_dir, port)
    broker = await _start_broker(port)
    try:
        print(f"Embedded MQTT broker on mqtt://127.0.0.1:{port}; library: {settings_dir}\n")
        code = await _two_syncs(demo)
        if code == 0:
            await dump_retained(demo, workdir / RETAINED_DUMP)
        if code == 0 and settings.serve:
            code = await _serve(demo)
    finally:
        await broker.shutdown()
    print(f"\nKept for you to inspect: {workdir} (the library, and {RETAINED_DUMP}: every "
          "retained message the broker held)")
    print("Point it at your own broker: MQTT_BROKER_URL=mqtt://<host>:1883 "
          "spotify-to-plex-mqtt --settings-dir <your Spotify-to-Plex settings>")
    return code
