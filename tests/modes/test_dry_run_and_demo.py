"""Dry run (with and without a broker) and the zero-setup demo, run as a user runs them."""

# ruff: noqa: S105 - made-up, distinctive secrets whose absence from output is checked

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from library_files import CliResult, SettingsDir, run_cli, varied_library, watch
from mosquitto import Mosquitto, publish_retained, retained
from spotify_to_plex_mqtt.core.bridge import bridge_configs
from spotify_to_plex_mqtt.core.discovery import Topics, render
from spotify_to_plex_mqtt.core.entities import Entity, resolve
from spotify_to_plex_mqtt.core.library import LEDGER
from spotify_to_plex_mqtt.inputs.source import LibrarySource
from spotify_to_plex_mqtt.modes.oneshot import one_shot
from spotify_to_plex_mqtt.modes.report import MANIFEST
from spotify_to_plex_mqtt.settings.config import load_settings

DEFAULT = Topics()
PASSWORD = "Dry-Run-Pw-9c41e07b"  # distinctive: must appear nowhere


@pytest.fixture(autouse=True)
def _no_plex(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLEX_URL", "PLEX_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def library(tmp_path: Path) -> SettingsDir:
    return varied_library(tmp_path / "settings").write()


def entities_of(lib: SettingsDir) -> tuple[Entity, ...]:
    return resolve(lib.library()).entities


def rendered(lib: SettingsDir) -> dict[str, bytes]:
    """The desired retained state but the bridge state (which carries a timestamp)."""
    return {**render(DEFAULT, entities_of(lib)), **bridge_configs(DEFAULT)}


def read_manifest(lib: SettingsDir) -> tuple[str, dict[str, Any]]:
    text = (lib.root / MANIFEST).read_text(encoding="utf-8")
    manifest: dict[str, Any] = json.loads(text)
    return text, manifest


def assert_entities(manifest: dict[str, Any], lib: SettingsDir) -> None:
    """The manifest lists every entity with its entity id and topics, and counts by type."""
    entities = entities_of(lib)
    assert [(m["id"], m["name"], m["category"], m["type"], m["entity_id"], m["state_topic"],
             m["config_topic"]) for m in manifest["entities"]] == [
        (e.id, e.name, e.category, e.type, f"sensor.{DEFAULT.item_object_id(e.slug)}",
         DEFAULT.item_state(e.slug), DEFAULT.config(DEFAULT.item_object_id(e.slug)))
        for e in entities]
    assert manifest["statistics"]["by_type"] == dict(Counter(e.type for e in entities))
    assert manifest["statistics"]["entities"] == len(entities)


def assert_secret_kept(result: CliResult, manifest_text: str, secret: str) -> None:
    assert secret not in result.stdout
    assert secret not in result.stderr
    assert secret not in manifest_text


# -- dry run against a broker ---------------------------------------------------------------


@pytest.mark.broker
@pytest.mark.parametrize("how", ["--dry-run", "MQTT_DRY_RUN=true"])
async def test_dry_run_publishes_nothing_and_writes_the_manifest(
        clean_broker: Mosquitto, library: SettingsDir, how: str) -> None:
    broker = clean_broker
    # The real service ran once; the broker holds its state and something of the original's.
    settings = load_settings(["--one-shot", "--settings-dir", str(library.root)], {
        "MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": broker.username,
        "MQTT_PASSWORD": broker.password})
    assert await one_shot(settings) == 0
    leftover = {"homeassistant/sensor/item_gone/config": json.dumps(
        {"unique_id": "spotify_to_plex_item_gone", "name": "Gone",
         "state_topic": "spotify-to-plex/items/gone"}).encode()}
    publish_retained(broker, leftover)
    first = rendered(library)
    focus = next(e for e in entities_of(library) if e.id == "37i9dQZF1DWZeKCadgRdKQ")
    library.relabel("liked-demo", "Jazz")
    library.delete(focus.id)
    before = retained(broker)

    # The password only in the URL, and debug logging on: the likeliest places for a leak.
    url = f"mqtt://{broker.username}:{broker.password}@{broker.host}:{broker.port}"
    env = {"MQTT_BROKER_URL": url}
    args = ["--settings-dir", str(library.root), "--debug"]
    if how == "--dry-run":
        args.append("--dry-run")
    else:
        env["MQTT_DRY_RUN"] = "true"
    result, during = await watch(broker, lambda: asyncio.to_thread(run_cli, *args, env=env))

    assert result.returncode == 0, result.output
    # Only the scan's markers and probes (QoS 0, never retained, empty) may pass.
    markers = (f"{DEFAULT.scan_marker_prefix}/", DEFAULT.scan_probe_prefix)
    assert [t for t, _ in during if not t.startswith(markers)] == []
    assert retained(broker) == before
    text, manifest = read_manifest(library)
    assert_entities(manifest, library)
    wanted = rendered(library)
    changed = {t for t, p in wanted.items() if before.get(t) != p}
    assert set(manifest["would_publish"]) - {DEFAULT.bridge_state} == changed
    assert changed == {DEFAULT.item_state(next(
        e.slug for e in entities_of(library) if e.id == "liked-demo")), DEFAULT.categories_state}
    assert set(manifest["would_remove"]) == {
        DEFAULT.item_state(focus.slug), DEFAULT.config(DEFAULT.item_object_id(focus.slug)),
        *leftover}
    assert set(first) - set(wanted) == {DEFAULT.item_state(focus.slug),
                                        DEFAULT.config(DEFAULT.item_object_id(focus.slug))}
    for entity in manifest["entities"]:
        assert entity["state"] == json.loads(wanted[entity["state_topic"]])
        assert entity["config"] == json.loads(wanted[entity["config_topic"]])
    assert_secret_kept(result, text, broker.password)
    assert "dry run" in result.stdout.lower()


# -- dry run without a broker ---------------------------------------------------------------


def test_dry_run_without_a_broker_uses_the_ledger(library: SettingsDir) -> None:
    (library.root / LEDGER).write_text(json.dumps(["liked-demo", "removed-since"]))  # old format
    env = {"MQTT_DRY_RUN": "true", "MQTT_USERNAME": "homeassistant", "MQTT_PASSWORD": PASSWORD,
           "DEBUG": "*"}

    result = run_cli("--settings-dir", str(library.root), env=env)

    assert result.returncode == 0, result.output
    text, manifest = read_manifest(library)
    assert_entities(manifest, library)
    wanted = rendered(library)
    assert set(manifest["would_publish"]) == {*wanted, DEFAULT.bridge_state}
    for entity in manifest["entities"]:
        assert entity["state"] == json.loads(wanted[entity["state_topic"]])
        assert entity["config"] == json.loads(wanted[entity["config_topic"]])
    assert manifest["would_remove"] == ["removed-since"]
    assert manifest["config"]["mqtt"]["broker"] is None
    assert_secret_kept(result, text, PASSWORD)


# -- demo -----------------------------------------------------------------------------------


def test_demo_runs_without_setup_and_shows_the_sample_entities(tmp_path: Path) -> None:
    sample = Path(str(resources.files("spotify_to_plex_mqtt").joinpath("sample")))
    snapshot = LibrarySource(sample).read()
    assert snapshot.errors == ()
    resolution = resolve(snapshot.library)
    published = {e.name for e in resolution.entities}
    unpublished = {i.title for i in snapshot.library.items} - published
    assert published
    assert unpublished

    # No ./settings there: the sample. TMPDIR: the kept work directory is the test's.
    result = run_cli("demo", cwd=tmp_path, timeout=30, env={"TMPDIR": str(tmp_path)})

    assert result.returncode == 0, result.output
    table = result.stdout[result.stdout.rindex("entity  "):result.stdout.index("What Home")]
    for name in published:
        assert name[:40] in table
    for entity in resolution.entities:
        assert f"sensor.{DEFAULT.item_object_id(entity.slug)}" in table
    for title in unpublished:
        assert title not in table
    summaries = re.findall(r"(\d+) messages published", result.stdout)
    assert len(summaries) == 2
    assert int(summaries[0]) > 0
    assert int(summaries[1]) == 0  # the second sync publishes nothing
    # What Home Assistant gets: the categories sensor, the bridge, one item's payloads.
    shown = result.stdout[result.stdout.index("What Home"):]
    assert f"Music Categories sensor: {DEFAULT.config(DEFAULT.categories_object_id)}" in shown
    for topic in bridge_configs(DEFAULT):
        assert topic in shown
    assert "One item's discovery config" in shown
    assert '"media_content_id"' in shown
    # Nothing is deleted: the library and the broker's messages are kept, and named.
    kept = re.search(r"Kept for you to inspect: (\S+)", result.stdout)
    assert kept is not None
    assert (Path(kept.group(1)) / "broker_retained.json").is_file()
    assert Path(kept.group(1)).parent == tmp_path
    assert "Traceback" not in result.stderr
