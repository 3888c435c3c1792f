"""A real Home Assistant core for the tests: its config, started, and its HTTP/websocket APIs.

The config directory is written before the first start so that nothing waits for a person:
`.storage` holds an owner with a long-lived access token, finished onboarding, and an MQTT
config entry pointed at the test's Mosquitto with discovery on. The repository's
`homeassistant/` files are copied in as a user would copy them. HTTP listens on 127.0.0.1
only; no integration that broadcasts on the network (zeroconf, ssdp, dhcp, Plex GDM) is
configured.

Home Assistant runs from the venv that `.ci/home-assistant.sh` installs; its Python is
found through `S2P_HA_PYTHON`, or by running that script.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from ha_websocket import WebSocket

REPO = Path(__file__).resolve().parents[2]
HA_PYTHON_VARIABLE = "S2P_HA_PYTHON"
INSTALL_SCRIPT = REPO / ".ci" / "home-assistant.sh"


KITCHEN = "media_player.kitchen_speaker"
LIVING_ROOM = "media_player.living_room_speaker"

# Two offline media players that accept play_media (the `universal` platform with a command),
# and two scripts made from the repo's blueprint.
PLAYERS = f"""
media_player:
  - platform: universal
    name: Kitchen Speaker
    unique_id: s2p_test_kitchen_speaker
    commands:
      play_media:
        action: script.s2p_test_played
  - platform: universal
    name: Living Room Speaker
    unique_id: s2p_test_living_room_speaker
    commands:
      play_media:
        action: script.s2p_test_played
script:
  s2p_test_played:
    sequence:
      - stop: played
  play_jazz_playlist:
    use_blueprint:
      path: spotify_to_plex/play_category.yaml
      input:
        media_player: {KITCHEN}
        category: jAZZ
        kind: playlist
        shuffle: true
  play_polka:
    use_blueprint:
      path: spotify_to_plex/play_category.yaml
      input:
        media_player: {KITCHEN}
        category: Polka
"""


class HomeAssistantError(RuntimeError):
    """Home Assistant could not be installed, started or asked."""


def ha_python() -> str:
    """The Python of the Home Assistant venv: `S2P_HA_PYTHON`, else what the install script
    prints (it installs on first use, then answers at once)."""
    if found := os.environ.get(HA_PYTHON_VARIABLE):
        return found
    proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True,
                          check=False, timeout=1800)
    if proc.returncode != 0:
        raise HomeAssistantError(f"{INSTALL_SCRIPT.name} failed ({proc.returncode}): "
                                 f"{proc.stderr[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def long_lived_token(refresh_token_id: str, jwt_key: str) -> str:
    """The HS256 access token Home Assistant issues for a long-lived refresh token."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"iss": refresh_token_id, "iat": now,
                              "exp": now + 10 * 365 * 86400}).encode())
    signature = hmac.new(jwt_key.encode(), f"{header}.{claims}".encode(), hashlib.sha256)
    return f"{header}.{claims}.{_b64(signature.digest())}"


def _store(key: str, data: dict[str, Any], version: int = 1, minor: int = 1) -> str:
    return json.dumps({"version": version, "minor_version": minor, "key": key, "data": data},
                      indent=2)


def storage_files(mqtt: dict[str, Any]) -> tuple[dict[str, str], str]:
    """`.storage` files for an onboarded instance, and the owner's access token."""
    now = datetime.now(UTC).isoformat()
    user_id, token_id, jwt_key = uuid.uuid4().hex, uuid.uuid4().hex, secrets.token_hex(64)
    auth = {
        "users": [{"id": user_id, "group_ids": ["system-admin"], "is_owner": True,
                   "is_active": True, "name": "Test", "system_generated": False,
                   "local_only": False}],
        "groups": [{"id": "system-admin", "name": "Administrators"},
                   {"id": "system-users", "name": "Users"},
                   {"id": "system-read-only", "name": "Read Only"}],
        "credentials": [],
        "refresh_tokens": [{
            "id": token_id, "user_id": user_id, "client_id": None, "client_name": "tests",
            "client_icon": None, "token_type": "long_lived_access_token", "created_at": now,
            "access_token_expiration": 10 * 365 * 86400.0, "token": secrets.token_hex(64),
            "jwt_key": jwt_key, "last_used_at": None, "last_used_ip": None,
            "expire_at": None, "credential_id": None, "version": None}],
    }
    entry = {
        "entry_id": uuid.uuid4().hex, "version": 1, "minor_version": 2, "domain": "mqtt",
        "title": "Test Mosquitto", "data": mqtt,
        "options": {"discovery": True, "discovery_prefix": "homeassistant"},
        "pref_disable_new_entities": False, "pref_disable_polling": False, "source": "user",
        "unique_id": None, "disabled_by": None, "created_at": now, "modified_at": now,
        "discovery_keys": {}, "subentries": [],
    }
    files = {
        "auth": _store("auth", auth),
        "auth_provider.homeassistant": _store("auth_provider.homeassistant", {"users": []}),
        "onboarding": _store("onboarding", {"done": ["user", "core_config", "analytics",
                                                     "integration"]}, version=4),
        "core.config_entries": _store("core.config_entries", {"entries": [entry]}, minor=5),
    }
    return files, long_lived_token(token_id, jwt_key)


def configuration(port: int, extra: str) -> str:
    """configuration.yaml: the core, HTTP on loopback, Assist, the repo's package."""
    return f"""\
homeassistant:
  name: Spotify-to-Plex test
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
  packages: !include_dir_named packages
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
conversation:
logger:
  default: warning
{extra}"""


class HomeAssistant:
    """One Home Assistant core process with its config directory; no I/O until `start`."""

    def __init__(self, python: str, config_dir: Path, port: int, mqtt: dict[str, Any],
                 extra_config: str = "") -> None:
        self.python = python
        self.config_dir = config_dir
        self.port = port
        self.mqtt = mqtt
        self.extra_config = extra_config
        self.token = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.config_dir / "home-assistant.log"

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def prepare(self) -> None:
        """Write the config directory, the repo's homeassistant/ files included."""
        shutil.copytree(REPO / "homeassistant", self.config_dir, dirs_exist_ok=True)
        storage = self.config_dir / ".storage"
        storage.mkdir(parents=True, exist_ok=True)
        files, self.token = storage_files(self.mqtt)
        for name, text in files.items():
            (storage / name).write_text(text, encoding="utf-8")
        (self.config_dir / "configuration.yaml").write_text(
            configuration(self.port, self.extra_config), encoding="utf-8")

    def launch(self) -> None:
        """Write the config directory and start the core (see `wait_until_running`)."""
        self.prepare()
        with (self.config_dir / "stdout.log").open("wb") as output:
            self._proc = subprocess.Popen(
                [self.python, "-m", "homeassistant", "--config", str(self.config_dir),
                 "--skip-pip", "--log-file", str(self.log_file)],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def wait_until_running(self, within: float = 120.0) -> None:
        """Return once the API answers and the core is running; raise if it exits first."""
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    code = None if self._proc is None else self._proc.returncode
                    raise HomeAssistantError(f"Home Assistant exited with {code}"
                                             f":\n{self._tail()}")
                if time.monotonic() > deadline:
                    raise HomeAssistantError(f"Home Assistant did not start within {within:g} s"
                                             f":\n{self._tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/api/config", headers=self.headers,
                                           timeout=aiohttp.ClientTimeout(total=5)) as resp:
                        if resp.status == 200 and (await resp.json()).get("state") == "RUNNING":
                            return
                await asyncio.sleep(0.25)  # polling a process's readiness, not synchronising

    def _tail(self) -> str:
        text = self.log_text() or (self.config_dir / "stdout.log").read_text(errors="replace")
        return text[-4000:]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        async with aiohttp.ClientSession(headers=self.headers) as session, \
                session.request(method, self.url + path, json=body) as resp:
            if resp.status >= 400:
                raise HomeAssistantError(f"{method} {path}: HTTP {resp.status} "
                                         f"{await resp.text()}")
            return await resp.json()

    def websocket(self) -> WebSocket:
        return WebSocket(f"{self.url}/api/websocket", self.token, HomeAssistantError)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def put_kitchen_speaker_in_the_kitchen(ha: HomeAssistant) -> None:
    async with ha.websocket() as ws:
        area = await ws.command("config/area_registry/create", name="Kitchen")
        await ws.command("config/entity_registry/update", entity_id=KITCHEN,
                         area_id=area["area_id"])


async def item_states(ha: HomeAssistant) -> dict[str, dict[str, Any]]:
    states = await ha.request("GET", "/api/states")
    return {s["entity_id"]: s for s in states
            if s["entity_id"].startswith("sensor.spotify_to_plex_item_")}
