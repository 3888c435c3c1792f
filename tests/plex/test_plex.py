"""Plex settings, client and artwork cache, against a Plex stand-in over real HTTP."""
# The tokens here are made up; they exist to prove they never leak.
# ruff: noqa: S105, S106, S107

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from plex_standin import PlexStandIn
from spotify_to_plex_mqtt.core.entities import Entity, Resolution
from spotify_to_plex_mqtt.http.metrics import Metrics
from spotify_to_plex_mqtt.plex.artwork import ArtworkCache
from spotify_to_plex_mqtt.plex.client import PlexClient
from spotify_to_plex_mqtt.plex.enricher import PlexLink
from spotify_to_plex_mqtt.plex.errors import PlexAuthError, PlexConfigError, PlexUnavailable
from spotify_to_plex_mqtt.plex.settings import PlexSettings, load_plex_settings
from spotify_to_plex_mqtt.secret import MASK, RedactingFilter, Secret
from spotify_to_plex_mqtt.service.service import Service
from spotify_to_plex_mqtt.settings.config import load_settings

TOKEN = "tok-3f9a1c77e2"
ALBUMS = {"1": "/library/metadata/1/thumb/111", "2": "/library/metadata/2/thumb/222"}
PLAYLISTS = {"9": "/playlists/9/composite/1", "10": "/playlists/10/composite/1"}


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def settings_for(plex: PlexStandIn, token: str = TOKEN, server_id: str = "",
                 token_source: str = "PLEX_TOKEN") -> PlexSettings:
    return PlexSettings(url=plex.url, token=Secret(token), server_id=server_id,
                        verify_tls=True, token_source=token_source)


@pytest.fixture
async def plex() -> AsyncIterator[PlexStandIn]:
    async with PlexStandIn(token=TOKEN, albums=dict(ALBUMS), playlists=dict(PLAYLISTS)) as s:
        yield s


@pytest.fixture
async def client(plex: PlexStandIn) -> AsyncIterator[PlexClient]:
    async with PlexClient(settings_for(plex), timeout=2.0, backoff_base=0.01) as c:
        yield c


# --- settings -----------------------------------------------------------------------------


def write_plex_json(directory: Path, data: object) -> None:
    (directory / "plex.json").write_text(json.dumps(data), encoding="utf-8")


def test_no_plex_configured_gives_none(tmp_path: Path) -> None:
    assert load_plex_settings(tmp_path, {}) is None
    write_plex_json(tmp_path, {"uri": "", "token": ""})
    assert load_plex_settings(tmp_path, {}) is None


def test_server_token_wins_over_token(tmp_path: Path) -> None:
    write_plex_json(tmp_path, {"uri": "http://plex.lan:32400/", "token": "user-token",
                               "serverToken": "server-token", "id": "abc123"})
    settings = load_plex_settings(tmp_path, {})
    assert settings is not None
    assert settings.token.reveal() == "server-token"
    assert settings.token_source == "plex.json serverToken"
    assert (settings.url, settings.server_id, settings.verify_tls) == (
        "http://plex.lan:32400", "abc123", True)
    assert settings.address == "plex.lan:32400"


def test_token_used_without_server_token(tmp_path: Path) -> None:
    write_plex_json(tmp_path, {"uri": "https://plex.example", "token": "user-token", "id": ""})
    settings = load_plex_settings(tmp_path, {})
    assert settings is not None
    assert (settings.token.reveal(), settings.token_source) == ("user-token", "plex.json token")
    assert settings.address == "plex.example:443"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    write_plex_json(tmp_path, {"uri": "http://old:32400", "serverToken": "file-token",
                               "id": "abc"})
    settings = load_plex_settings(tmp_path, {"PLEX_URL": "http://new:32400",
                                             "PLEX_TOKEN": "env-token",
                                             "PLEX_VERIFY_TLS": "false"})
    assert settings is not None
    assert (settings.url, settings.token.reveal(), settings.token_source) == (
        "http://new:32400", "env-token", "PLEX_TOKEN")
    assert settings.server_id == "abc"
    assert settings.verify_tls is False


def test_environment_alone_is_enough(tmp_path: Path) -> None:
    settings = load_plex_settings(tmp_path, {"PLEX_URL": "http://plex:32400",
                                             "PLEX_TOKEN": "env-token"})
    assert settings is not None
    assert (settings.server_id, settings.verify_tls) == ("", True)


@pytest.mark.parametrize("content", [
    '{"uri": "http://plex:32400", "token": "sekrit-77', "[]", "", "\xff\xfe",
    '{"uri": "http://plex:32400", "token": 770077}',
])
def test_malformed_plex_json_names_the_file(tmp_path: Path, content: str) -> None:
    (tmp_path / "plex.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(PlexConfigError) as caught:
        load_plex_settings(tmp_path, {})
    message = str(caught.value)
    assert "plex.json" in message
    assert "sekrit" not in message
    assert "770077" not in message


@pytest.mark.parametrize(("env", "source"), [
    ({"PLEX_URL": "plex.lan:32400"}, "PLEX_URL"),
    ({"PLEX_URL": "ftp://plex.lan"}, "PLEX_URL"),
    ({"PLEX_URL": "http://"}, "PLEX_URL"),
    ({"PLEX_URL": "http://plex.lan:99999"}, "PLEX_URL"),
    ({"PLEX_URL": f"http://plex.lan:32400/?X-Plex-Token={TOKEN}"}, "PLEX_URL"),
    ({"PLEX_URL": f"http://me:{TOKEN}@plex.lan:32400"}, "PLEX_URL"),
    ({}, "plex.json uri"),
])
def test_bad_url_names_its_source_and_hides_the_token(
        tmp_path: Path, env: dict[str, str], source: str) -> None:
    write_plex_json(tmp_path, {"uri": "//nowhere", "token": TOKEN})
    with pytest.raises(PlexConfigError) as caught:
        load_plex_settings(tmp_path, env)
    message = str(caught.value)
    assert source in message
    assert "PLEX_URL=http://" in message  # says what to do
    assert TOKEN not in message


def test_half_configured_plex_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PlexConfigError, match="PLEX_TOKEN") as caught:
        load_plex_settings(tmp_path, {"PLEX_URL": "http://plex:32400"})
    assert caught.value.setting == "PLEX_TOKEN"
    with pytest.raises(PlexConfigError, match="no Plex address") as caught:
        load_plex_settings(tmp_path, {"PLEX_TOKEN": TOKEN})
    assert TOKEN not in str(caught.value)


def test_bad_verify_tls_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlexConfigError, match="PLEX_VERIFY_TLS"):
        load_plex_settings(tmp_path, {"PLEX_URL": "http://p:1", "PLEX_TOKEN": "t",
                                      "PLEX_VERIFY_TLS": "maybe"})


def test_token_never_in_repr(tmp_path: Path) -> None:
    write_plex_json(tmp_path, {"uri": "http://plex:32400", "serverToken": TOKEN})
    settings = load_plex_settings(tmp_path, {})
    assert settings is not None
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert TOKEN not in repr(PlexClient(settings).__dict__)


# --- client -------------------------------------------------------------------------------


async def test_constructor_does_no_io(plex: PlexStandIn) -> None:
    client = PlexClient(settings_for(plex))
    await asyncio.sleep(0)
    assert plex.log == []
    assert client.requests == 0
    await client.aclose()


async def test_metadata_is_fetched_in_bounded_batches(plex: PlexStandIn) -> None:
    plex.albums = {str(k): f"/library/metadata/{k}/thumb/7" for k in range(1000, 2000)}
    plex.latency = 0.02  # long enough for batches to overlap
    async with PlexClient(settings_for(plex), batch_size=100, concurrency=4) as client:
        thumbs = await client.metadata([str(k) for k in range(1000, 2000)])
    assert thumbs == plex.albums
    assert len(plex.paths("/library/metadata/")) == 10
    assert client.requests == 10
    assert len(client.latencies) == 10
    assert client.request_seconds >= 10 * 0.02
    assert 1 < plex.max_in_flight <= 4
    assert all(s.token_ok and s.accept_json and not s.token_in_url for s in plex.log)


async def test_wrong_token_is_an_auth_error_naming_its_source(plex: PlexStandIn) -> None:
    wrong = "wrong-tok-5521"
    settings = settings_for(plex, token=wrong, token_source="plex.json serverToken")
    async with PlexClient(settings, backoff_base=0.01) as client:
        with pytest.raises(PlexAuthError) as caught:
            await client.metadata(["1"])
    message = str(caught.value)
    assert "plex.json serverToken" in message
    assert wrong not in message
    assert wrong not in repr(caught.value)
    assert client.requests == 1  # a wrong token is not retried


async def test_a_hanging_plex_times_out_within_the_bound(plex: PlexStandIn) -> None:
    plex.hang()
    loop = asyncio.get_running_loop()
    async with PlexClient(settings_for(plex), timeout=0.3, retries=1,
                          backoff_base=0.05) as client:
        started = loop.time()
        with pytest.raises(PlexUnavailable) as caught:
            async with asyncio.timeout(5):  # fail, not hang, if the timeout were ignored
                await client.identity()
        elapsed = loop.time() - started
    assert 0.6 <= elapsed < 0.6 + 0.05 + 0.5
    assert f"127.0.0.1:{plex.port}" in str(caught.value)
    assert "timed out" in str(caught.value)
    assert client.requests == 2


async def test_5xx_bursts_are_retried(plex: PlexStandIn, client: PlexClient) -> None:
    plex.fail_next(2, status=503)
    assert await client.metadata(["1", "2"]) == ALBUMS
    assert client.requests == 3


async def test_5xx_beyond_the_retries_is_unavailable(
        plex: PlexStandIn, client: PlexClient) -> None:
    plex.fail_next(3)
    with pytest.raises(PlexUnavailable, match="HTTP 500"):
        await client.metadata(["1"])
    assert client.requests == 3
    assert await client.metadata(["1"]) == {"1": ALBUMS["1"]}  # and it recovers


async def test_unknown_keys_are_absent(plex: PlexStandIn, client: PlexClient) -> None:
    assert await client.metadata(["1", "999", "2", "1"]) == ALBUMS
    assert await client.metadata(["998", "999"]) == {}
    assert await client.metadata(["not-a-key", "1/children"]) == {}
    assert plex.paths() == ["/library/metadata/1,999,2", "/library/metadata/998,999",
                            "/library/metadata/998", "/library/metadata/999"]


async def test_a_bad_key_cannot_hide_good_ones(plex: PlexStandIn, client: PlexClient) -> None:
    plex.strict_404 = True  # the whole batch is 404 when any key is unknown
    plex.albums = {str(k): f"/t/{k}" for k in range(100, 116)}
    keys = [str(k) for k in range(100, 116)]
    keys[5] = "999"
    thumbs = await client.metadata(keys)
    assert sorted(thumbs) == sorted(k for k in keys if k != "999")
    assert client.requests <= 1 + 2 * 4  # one split per level of a 16-key batch


async def test_identity_and_playlists(client: PlexClient) -> None:
    assert await client.identity() == "standinmachineid"
    assert await client.playlists() == PLAYLISTS


# --- artwork cache ------------------------------------------------------------------------


async def test_lookup_lists_missing_keys_and_returns_the_rest(
        plex: PlexStandIn, client: PlexClient) -> None:
    cache = ArtworkCache(client)
    result = await cache.lookup({"1": "album", "999": "album", "2": "album",
                                 "9": "playlist", "77": "playlist"})
    assert result.thumbs == {**ALBUMS, "9": PLAYLISTS["9"]}
    assert set(result.missing) == {"999", "77"}
    assert result.error is None
    assert result.requests == 2
    assert plex.paths() == ["/playlists", "/library/metadata/1,999,2"]


async def test_resync_uses_the_cache(plex: PlexStandIn, client: PlexClient) -> None:
    cache = ArtworkCache(client)
    wanted: dict[str, Literal["playlist", "album"]] = {"1": "album", "9": "playlist",
                                                        "999": "album"}
    first = await cache.lookup(wanted)
    assert first.requests == 2
    again = await cache.lookup(wanted)
    assert (again.requests, again.thumbs, again.missing) == (0, first.thumbs, ("999",))
    assert len(plex.log) == 2
    plus_album = await cache.lookup({**wanted, "2": "album"})
    assert plus_album.requests == 1
    assert plex.paths()[-1] == "/library/metadata/2"
    plus_playlist = await cache.lookup({**wanted, "2": "album", "10": "playlist"})
    assert plus_playlist.requests == 0  # already in the playlist listing
    assert plus_playlist.thumbs["10"] == PLAYLISTS["10"]


async def test_thumbs_are_refreshed_after_expiry(plex: PlexStandIn, client: PlexClient) -> None:
    clock = FakeClock()
    cache = ArtworkCache(client, refresh_after=100, clock=clock)
    wanted: dict[str, Literal["playlist", "album"]] = {"1": "album", "9": "playlist"}
    await cache.lookup(wanted)
    plex.albums["1"] = "/library/metadata/1/thumb/new"
    clock.now += 99
    assert (await cache.lookup(wanted)).requests == 0
    clock.now += 1
    result = await cache.lookup(wanted)
    assert result.requests == 2
    assert result.thumbs["1"] == "/library/metadata/1/thumb/new"


async def test_missing_keys_are_asked_again_sooner(
        plex: PlexStandIn, client: PlexClient) -> None:
    clock = FakeClock()
    cache = ArtworkCache(client, refresh_after=1000, recheck_missing_after=60, clock=clock)
    assert (await cache.lookup({"5": "album"})).missing == ("5",)
    plex.albums["5"] = "/library/metadata/5/thumb/5"
    clock.now += 59
    assert (await cache.lookup({"5": "album"})).requests == 0
    clock.now += 1
    result = await cache.lookup({"5": "album"})
    assert (result.thumbs, result.missing, result.requests) == ({"5": plex.albums["5"]}, (), 1)


async def test_plex_down_keeps_cached_thumbs(plex: PlexStandIn) -> None:
    clock = FakeClock()
    async with PlexClient(settings_for(plex), timeout=0.5, retries=1,
                          backoff_base=0.01) as client:
        cache = ArtworkCache(client, refresh_after=100, clock=clock)
        await cache.lookup({"1": "album", "9": "playlist"})
        await plex.stop()
        clock.now += 500  # stale, and Plex cannot refresh them
        result = await cache.lookup({"1": "album", "9": "playlist", "2": "album"})
        assert result.thumbs == {"1": ALBUMS["1"], "9": PLAYLISTS["9"]}
        assert result.missing == ()
        assert result.error is not None
        assert f"127.0.0.1:{plex.port}" in result.error
        still = await cache.lookup({"1": "album", "9": "playlist"})
        assert (still.thumbs, still.error is not None) == (result.thumbs, True)
        await plex.start()
        back = await cache.lookup({"1": "album", "9": "playlist", "2": "album"})
        assert (back.error, back.thumbs) == (None, {**ALBUMS, "9": PLAYLISTS["9"]})


async def test_a_failing_playlist_listing_does_not_keep_album_artwork_away(
        plex: PlexStandIn) -> None:
    plex.failing_paths.add("/playlists")
    async with PlexClient(settings_for(plex), timeout=0.5, retries=0,
                          backoff_base=0.01) as client:
        cache = ArtworkCache(client)
        result = await cache.lookup({"1": "album", "9": "playlist"})
        assert result.thumbs == {"1": ALBUMS["1"]}
        assert result.error is not None
        assert "500" in result.error
        plex.failing_paths.clear()
        back = await cache.lookup({"1": "album", "9": "playlist"})
    assert (back.thumbs, back.error) == ({"1": ALBUMS["1"], "9": PLAYLISTS["9"]}, None)


async def test_auth_failure_in_lookup_is_reported_not_raised(plex: PlexStandIn) -> None:
    async with PlexClient(settings_for(plex, token="nope-nope")) as client:
        result = await ArtworkCache(client).lookup({"1": "album"})
    assert result.error is not None
    assert "PLEX_TOKEN" in result.error
    assert "nope-nope" not in result.error
    assert result.thumbs == {}


async def test_server_id_is_asked_once(plex: PlexStandIn, client: PlexClient) -> None:
    cache = ArtworkCache(client)
    assert list(await asyncio.gather(cache.server_id(), cache.server_id())) == [
        "standinmachineid"] * 2
    assert await cache.server_id() == "standinmachineid"
    assert plex.paths() == ["/identity"]


async def test_identity_wins_over_a_stale_configured_server_id(plex: PlexStandIn) -> None:
    # Home Assistant plays plex://<id>/<key> only with the id the server itself reports.
    async with PlexClient(settings_for(plex, server_id="stalefromplexjson")) as client:
        assert await ArtworkCache(client).server_id() == "standinmachineid"
    assert plex.paths() == ["/identity"]


async def test_configured_server_id_stands_in_while_identity_fails(plex: PlexStandIn) -> None:
    async with PlexClient(settings_for(plex, server_id="fromplexjson"), retries=0) as client:
        cache = ArtworkCache(client)
        plex.fail_next(1)
        assert await cache.server_id() == "fromplexjson"
        assert await cache.server_id() == "standinmachineid"


async def test_server_id_failure_is_empty_and_asked_again(plex: PlexStandIn) -> None:
    async with PlexClient(settings_for(plex), retries=0) as client:
        cache = ArtworkCache(client)
        plex.fail_next(1)
        assert await cache.server_id() == ""
        assert await cache.server_id() == "standinmachineid"


async def test_factory_without_plex_gives_empty_results() -> None:
    cache = ArtworkCache(lambda: None)
    result = await cache.lookup({"1": "album"})
    assert (result.thumbs, result.missing, result.error, result.requests) == ({}, (), None, 0)
    assert await cache.server_id() == ""


async def test_another_server_starts_a_fresh_cache(plex: PlexStandIn) -> None:
    other_albums = {"1": "/library/metadata/1/thumb/other"}
    async with PlexStandIn(token=TOKEN, albums=other_albums, machine_id="otherid") as other, \
            PlexClient(settings_for(plex)) as first, PlexClient(settings_for(other)) as second:
        current = [first]
        cache = ArtworkCache(lambda: current[0])
        assert await cache.server_id() == "standinmachineid"
        await cache.lookup({"1": "album"})
        current[0] = second
        result = await cache.lookup({"1": "album"})
        assert (result.requests, result.thumbs) == (1, other_albums)
        assert await cache.server_id() == "otherid"


async def test_each_key_plex_does_not_know_is_warned_about_once(
        plex: PlexStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    link = PlexLink(tmp_path, {"PLEX_URL": plex.url, "PLEX_TOKEN": TOKEN})
    link.cache.recheck_missing_after = 0.0  # ask Plex again every time

    def entity(key: str) -> Entity:
        return Entity(f"id-{key}", f"slug{key}", f"Album {key}", "Jazz", "spotify-album",
                      "album", key)

    def warned() -> list[str]:
        """The keys named by the WARNING lines of one sync (at most one line per sync)."""
        lines = [r.getMessage() for r in caplog.records
                 if r.levelno == logging.WARNING and "does not know" in r.getMessage()]
        caplog.clear()
        assert len(lines) <= 1, lines
        return re.findall(r"\(key (\d+)\)", lines[0]) if lines else []

    try:
        await link.enrich(Resolution((entity("1"), entity("77")), ()))
        assert warned() == ["77"]
        await link.enrich_some(Resolution((entity("78"),), ()))  # a file-change sync
        assert warned() == ["78"]
        await link.enrich(Resolution((entity("1"), entity("77"), entity("78")), ()))
        assert warned() == []  # both were reported already
        plex.albums["77"] = "/thumb/77"  # matched in Plex at last
        await link.enrich(Resolution((entity("1"), entity("78")), ()))
        del plex.albums["77"]
        await link.enrich(Resolution((entity("1"), entity("77"), entity("78")), ()))
        assert warned() == ["77"]  # missing again: said again
    finally:
        await link.aclose()


async def test_hundreds_of_keys_plex_does_not_know_are_one_line_per_sync(
        plex: PlexStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spotify_to_plex_mqtt")
    link = PlexLink(tmp_path, {"PLEX_URL": plex.url, "PLEX_TOKEN": TOKEN})
    entities = tuple(Entity(f"id-{k}", f"slug{k}", f"Album {k}", "Jazz", "spotify-album",
                            "album", str(k)) for k in range(5000, 5300))
    try:
        await link.enrich(Resolution(entities, ()))
        lines = [r for r in caplog.records if "does not know" in r.getMessage()]
        assert len(lines) == 1
        assert "300 items" in lines[0].getMessage()
        assert "and 295 more" in lines[0].getMessage()
    finally:
        await link.aclose()


def test_a_token_only_plex_json_holds_is_masked_in_the_logs_once_read(tmp_path: Path) -> None:
    token = f"only-in-plex-json-{secrets.token_hex(8)}"
    # The filter is made at start, from the settings: it cannot know this token.
    redact = RedactingFilter(())

    def logged(message: str) -> str:
        record = logging.LogRecord("spotify_to_plex_mqtt", logging.WARNING, __file__, 1,
                                   "Plex answered: %s", (message,), None)
        redact.filter(record)
        return record.getMessage()

    assert token in logged(f"401 for X-Plex-Token={token}")  # not known yet
    (tmp_path / "plex.json").write_text(json.dumps(
        {"uri": "http://127.0.0.1:32400", "serverToken": token, "id": "abc"}), encoding="utf-8")
    settings = load_plex_settings(tmp_path, {})
    assert settings is not None
    assert settings.token.reveal() == token
    assert logged(f"401 for X-Plex-Token={token}") == f"Plex answered: 401 for X-Plex-Token={MASK}"


async def test_every_request_is_told_with_its_latency_and_outcome(plex: PlexStandIn) -> None:
    seen: list[tuple[float, str]] = []
    async with PlexClient(settings_for(plex), timeout=2.0, backoff_base=0.01,
                          on_request=lambda seconds, outcome: seen.append((seconds, outcome))
                          ) as client:
        plex.fail_next(1, status=503)
        assert await client.metadata(["1"]) == {"1": ALBUMS["1"]}
        assert await client.image("/no/such/thumb") is None
    assert [outcome for _, outcome in seen] == ["server_error", "ok", "not_found"]
    assert all(seconds >= 0 for seconds, _ in seen)
    assert client.requests == 3


async def test_the_service_metrics_count_what_the_plex_link_asks(
        plex: PlexStandIn, tmp_path: Path) -> None:
    metrics = Metrics()
    link = PlexLink(tmp_path, {"PLEX_URL": plex.url, "PLEX_TOKEN": TOKEN},
                    on_request=metrics.record_plex_request)
    entity = Entity("id-1", "slug1", "Album 1", "Jazz", "spotify-album", "album", "1")
    try:
        await link.enrich(Resolution((entity,), ()))
    finally:
        await link.aclose()
    text = metrics.render().decode()
    asked = [s for family in text_string_to_metric_families(text) for s in family.samples
             if s.name == "spotify_to_plex_plex_requests_total"]
    assert asked
    assert sum(s.value for s in asked) == len(plex.log) > 0


def test_the_service_feeds_its_plex_requests_to_its_metrics(tmp_path: Path) -> None:
    settings = load_settings(["--settings-dir", str(tmp_path)],
                             {"MQTT_BROKER_URL": "mqtt://broker.lan:1883"})
    service = Service(settings)
    assert service.plex._on_request == service.metrics.record_plex_request
