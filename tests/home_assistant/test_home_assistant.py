"""The product end to end, in a real Home Assistant: "play some jazz in the kitchen".

One Home Assistant core (the release `.ci/home-assistant.sh` installs) serves the module. It
discovers the items the service publishes to the module's own Mosquitto, loads the repo's
`homeassistant/` package, blueprint and sentences as a user copies them, and has two
offline `universal` media players: Kitchen Speaker in the area Kitchen, and Living Room
Speaker. A player's `play_media` shows as a `call_service` event on the websocket API.

That Home Assistant's Plex integration plays every published id is proven with its own
`process_plex_payload` against the Plex stand-in (tests/support/ha_plex_resolve.py): a configured
Plex integration only plays on a Plex client entity, which it finds through plex.tv or a
GDM broadcast, neither of which exists offline.

When Home Assistant cannot be installed or started these tests FAIL, never skip.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ha_instance import (
    KITCHEN,
    LIVING_ROOM,
    PLAYERS,
    HomeAssistant,
    HomeAssistantError,
    free_port,
    ha_python,
    item_states,
    put_kitchen_speaker_in_the_kitchen,
)
from ha_websocket import WebSocket, until
from library_files import SettingsDir, run_cli
from mosquitto import Mosquitto, MosquittoError
from plex_standin import PlexStandIn
from spotify_to_plex_mqtt.core.entities import Entity, resolve

pytestmark = pytest.mark.broker

PLAYABLE = re.compile(r"^plex://([A-Za-z0-9]+/)?[0-9]+$")
MACHINE_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"


# Home Assistant's own start-up warnings about this test setup, not about our files.
EXPECTED_WARNINGS = ("Skipping pip installation of required modules",
                     "zlib_ng and isal are not available")


def music_library(root: Path) -> SettingsDir:
    lib = SettingsDir(root)
    lib.add_playlist("37i9dQZF1DXbITWG1ZJKYt", "Late Night Jazz", "Jazz", "90001")
    lib.add_playlist("37i9dQZF1DX0SM0LYsmbMT", "Jazz Classics", "Jazz", "90002")
    lib.add_album("1weenld61qoidwYuZ1GESA", "Kind Of Blue", "Jazz", ["51001"])
    lib.add_album("2ODvWsOgouMbaA5xf0RkJe", "Chansons", "Café Français", ["51002"])
    lib.add_playlist("37i9dQZF1DWZeKCadgRdKQ", "Deep Focus", "Focus", "90004")
    lib.add_playlist("liked-demo", "Liked Songs", "Kids", "90005")
    lib.add_plex_media("plex://album/5d07c17e403c640290856b9b", "Abbey Road", "Rock",
                       "/library/metadata/48213/children")
    return lib.write()


ALBUMS = {key: f"/library/metadata/{key}/thumb/1" for key in ("51001", "51002", "48213")}
PLAYLISTS = {key: f"/playlists/{key}/composite/1" for key in ("90001", "90002", "90004", "90005")}


class StandInThread:
    """The Plex stand-in on a loop of its own, so that it answers subprocesses (the service,
    the Home Assistant venv) while the tests' own loops come and go."""

    def __init__(self, albums: dict[str, str], playlists: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._albums, self._playlists = albums, playlists
        self.plex: PlexStandIn | None = None

    def __enter__(self) -> PlexStandIn:
        self._thread.start()

        async def start() -> PlexStandIn:
            plex = PlexStandIn(albums=self._albums, playlists=self._playlists,
                               machine_id=MACHINE_ID)
            await plex.start()
            return plex

        self.plex = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self.plex

    def __exit__(self, *exc: object) -> None:
        if self.plex is not None:
            asyncio.run_coroutine_threadsafe(self.plex.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Setup:
    ha: HomeAssistant
    plex: PlexStandIn
    entities: tuple[Entity, ...]
    python: str

    def of_category(self, category: str) -> list[Entity]:
        return [e for e in self.entities if e.category == category]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("home-assistant")
    try:
        python = ha_python()
    except (HomeAssistantError, OSError, subprocess.SubprocessError) as error:
        pytest.fail(f"Home Assistant is not installed: {error} (run bash .ci/home-assistant.sh)")
    lib = music_library(root / "settings")
    broker = Mosquitto(workdir=root / "mosquitto")
    try:
        broker.start()
    except MosquittoError as error:
        pytest.fail(f"could not start Mosquitto: {error}")
    try:
        yield from _with_broker(python, root, lib, broker)
    finally:
        broker.close()


def _with_broker(python: str, root: Path, lib: SettingsDir, broker: Mosquitto
                 ) -> Iterator[Setup]:
    with StandInThread(ALBUMS, PLAYLISTS) as plex:
        (lib.root / "plex.json").write_text(json.dumps({"uri": plex.url, "token": plex.token}),
                                            encoding="utf-8")
        ha = HomeAssistant(python, root / "config", free_port(), {
            "broker": broker.host, "port": broker.port, "username": broker.username,
            "password": broker.password}, PLAYERS)
        try:
            try:
                ha.launch()
                asyncio.run(ha.wait_until_running())
            except HomeAssistantError as error:
                pytest.fail(f"Home Assistant did not start: {error}")
            asyncio.run(put_kitchen_speaker_in_the_kitchen(ha))
            published = run_cli("--one-shot", "--settings-dir", str(lib.root), env={
                "MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": broker.username,
                "MQTT_PASSWORD": broker.password})
            assert published.returncode == 0, published.output
            entities = resolve(lib.library(), plex_server_id=MACHINE_ID).entities
            asyncio.run(until(lambda: _all_discovered(ha, len(entities)), 30,
                              f"Home Assistant to show {len(entities)} item sensors"))
            yield Setup(ha, plex, entities, python)
        finally:
            ha.stop()


async def _all_discovered(ha: HomeAssistant, count: int) -> bool:
    states = await item_states(ha)
    return len(states) == count and all(s["attributes"].get("media_content_id")
                                        for s in states.values())


async def _converse(ws: WebSocket, text: str) -> tuple[str, list[dict[str, Any]]]:
    """Assist's answer to `text`, and the media_player.play_media calls it made."""
    calls = await ws.subscribe("call_service")
    answer = await ws.command("conversation/process", text=text, language="en")
    await ws.flush()
    return answer["response"]["speech"]["plain"]["speech"], _play_media(calls)


def _play_media(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["data"]["service_data"] for c in calls
            if (c["data"]["domain"], c["data"]["service"]) == ("media_player", "play_media")]


def _targets(data: dict[str, Any]) -> list[str]:
    entity_id = data["entity_id"]
    return [entity_id] if isinstance(entity_id, str) else list(entity_id)


async def test_every_item_is_in_home_assistant_with_a_playable_id(setup: Setup) -> None:
    states = await item_states(setup.ha)
    assert len(states) == len(setup.entities) == 7
    for entity in setup.entities:
        attributes = states[f"sensor.spotify_to_plex_item_{entity.slug}"]["attributes"]
        assert PLAYABLE.match(attributes["media_content_id"]), attributes
        assert attributes["media_content_id"] == f"plex://{MACHINE_ID}/{entity.plex_key}"
        assert attributes["plex_uri"] == attributes["media_content_id"]
        assert attributes["plex_path"] == f"/library/metadata/{entity.plex_key}"
        assert attributes["plex_key"] == entity.plex_key
    # The server id came from Plex /identity: plex.json has none.
    assert "/identity" in setup.plex.paths()


@pytest.mark.parametrize("text", ["play some jazz in the kitchen",
                                  "Play the Jazz music in the Kitchen"])
async def test_assist_plays_a_jazz_item_in_the_kitchen(setup: Setup, text: str) -> None:
    jazz = {e.media_content_id: e.name for e in setup.of_category("Jazz")}
    async with setup.ha.websocket() as ws:
        speech, calls = await _converse(ws, text)
    assert len(calls) == 1, calls
    (call,) = calls
    assert _targets(call) == [KITCHEN]
    assert call["media_content_id"] in jazz
    assert speech == f"Playing {jazz[call['media_content_id']]} in the Kitchen."


async def test_assist_names_known_categories_when_it_does_not_know_one(setup: Setup) -> None:
    async with setup.ha.websocket() as ws:
        speech, calls = await _converse(ws, "play some polka in the kitchen")
    assert calls == []
    assert "polka" in speech
    assert all(name in speech for name in ("Café Français", "Focus", "Jazz")), speech


async def test_assist_plays_on_a_player_by_name_ignoring_accents_and_case(setup: Setup) -> None:
    (chansons,) = setup.of_category("Café Français")
    async with setup.ha.websocket() as ws:
        speech, calls = await _converse(ws, "Play cafe francais music on the living room speaker")
    assert [(_targets(c), c["media_content_id"]) for c in calls] == [
        ([LIVING_ROOM], chansons.media_content_id)]
    assert speech == "Playing Chansons on the Living Room Speaker."


async def test_blueprint_plays_a_shuffled_jazz_playlist(setup: Setup) -> None:
    playlists = {e.media_content_id for e in setup.of_category("Jazz")
                 if e.media_content_type == "playlist"}
    assert len(playlists) == 2
    async with setup.ha.websocket() as ws:
        calls = await ws.subscribe("call_service")
        answer = await ws.command("call_service", domain="script", service="play_jazz_playlist",
                                  return_response=True)
        await ws.flush()
    (call,) = _play_media(calls)
    assert _targets(call) == [KITCHEN]
    content_id = call["media_content_id"]
    assert content_id.endswith("?shuffle=1")
    assert content_id.removesuffix("?shuffle=1") in playlists
    assert call["media_content_type"] == "playlist"
    assert answer["response"]["played"] is True


async def test_blueprint_without_an_item_of_the_category_plays_nothing(setup: Setup) -> None:
    async with setup.ha.websocket() as ws:
        calls = await ws.subscribe("call_service")
        answer = await ws.command("call_service", domain="script", service="play_polka",
                                  return_response=True)
        await ws.flush()
    assert _play_media(calls) == []
    assert answer["response"]["played"] is False
    assert "Polka" in answer["response"]["message"]
    assert "Jazz" in answer["response"]["message"]


async def test_the_repo_files_load_without_errors_or_warnings(setup: Setup) -> None:
    async with setup.ha.websocket() as ws:
        # Custom sentences load at the first Assist request (a YAML error there is logged);
        # the templates of every path warn only when rendered.
        for text in ("play some jazz in the kitchen", "play some polka on the kitchen speaker"):
            await ws.command("conversation/process", text=text, language="en")
        for script in ("play_jazz_playlist", "play_polka"):
            await ws.command("call_service", domain="script", service=script,
                             return_response=True)
        blueprints = await ws.command("blueprint/list", domain="script")
    assert "spotify_to_plex/play_category.yaml" in blueprints
    assert "error" not in blueprints["spotify_to_plex/play_category.yaml"]
    problems = [line for line in setup.ha.log_text().splitlines()
                if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)
                and not any(known in line for known in EXPECTED_WARNINGS)]
    assert problems == []


def test_home_assistants_plex_code_resolves_every_published_id(setup: Setup) -> None:
    ids = [{"id": e.media_content_id, "type": e.media_content_type} for e in setup.entities]
    ids += [{"id": f"plex://{e.plex_key}", "type": e.media_content_type}
            for e in setup.entities]  # the single-server form, used while the id is unknown
    ids.append({"id": setup.entities[0].media_content_id + "?shuffle=1", "type": "playlist"})
    before = len(setup.plex.log)
    resolve = Path(__file__).parents[1] / "support" / "ha_plex_resolve.py"
    proc = subprocess.run([setup.python, str(resolve)],
                          input=json.dumps({"url": setup.plex.url, "token": setup.plex.token,
                                            "machine_id": MACHINE_ID, "ids": ids}),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    answers = json.loads(proc.stdout)
    keys = [e.plex_key for e in setup.entities]
    assert [a.get("rating_key") for a in answers] == [*keys, *keys, keys[0]], answers
    assert [a["shuffle"] for a in answers] == [False] * (2 * len(keys)) + [True]
    asked = setup.plex.paths()[before:]
    assert all(f"/library/metadata/{key}" in asked for key in keys)


async def test_home_assistant_runs_no_network_discovery(setup: Setup) -> None:
    # The test instance must not broadcast on the machine's network.
    components = set((await setup.ha.request("GET", "/api/config"))["components"])
    assert {"mqtt", "conversation", "intent_script", "script"} <= components
    assert components.isdisjoint({"zeroconf", "ssdp", "dhcp", "bluetooth", "usb", "plex"})
