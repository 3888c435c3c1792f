"""Pure tests of `report` (summary, dry-run manifest) and of the ledger file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spotify_to_plex_mqtt.core.discovery import Topics, render
from spotify_to_plex_mqtt.core.entities import Skipped, resolve
from spotify_to_plex_mqtt.core.ledger import LedgerEntry
from spotify_to_plex_mqtt.core.library import LEDGER, Library, SavedItem
from spotify_to_plex_mqtt.core.reconcile import Plan, reconcile
from spotify_to_plex_mqtt.core.result import SyncResult
from spotify_to_plex_mqtt.inputs.atomic import write_json_atomic
from spotify_to_plex_mqtt.inputs.ledger import read_ledger, write_ledger
from spotify_to_plex_mqtt.modes.report import MANIFEST, entity_table, summary, write_manifest
from spotify_to_plex_mqtt.secret import MASK
from spotify_to_plex_mqtt.settings.config import Settings, load_settings

PASSWORD = "Pw-9f3k!zz"  # noqa: S105 - a distinctive test value

ITEMS = (
    SavedItem(type="spotify-playlist", id="jazz1", title="Jazz Classics", label="Jazz"),
    SavedItem(type="spotify-playlist", id="jazz2", title="Jazz Vibes", label="Jazz"),
    SavedItem(type="spotify-album", id="kind", title="Kind of Blue", label="Jazz"),
    SavedItem(type="plex-media", id="plex://album/1", title="Abbey Road",
              uri="/library/metadata/48213/children", label="Rock"),
    SavedItem(type="spotify-playlist", id="nomap1", title="Unmapped One", label="Rock"),
    SavedItem(type="spotify-album", id="nomap2", title="Unmapped Two", label="Rock"),
)
LIBRARY = Library(ITEMS, {"jazz1": "1", "jazz2": "2"}, {"kind": "3"})


def make_result(actual: dict[str, bytes] | None = None, *, published: int | None = None,
                removed: int = 0, errors: tuple[str, ...] = (),
                warnings: tuple[str, ...] = ()) -> SyncResult:
    resolution = resolve(LIBRARY)
    plan = reconcile(render(Topics(), resolution.entities), actual or {})
    return SyncResult(
        entities=resolution.entities, skipped=resolution.skipped, plan=plan,
        published=len(plan.publish) if published is None else published, removed=removed,
        errors=errors, warnings=warnings, duration=0.25,
    )


# --- summary -------------------------------------------------------------------------------


def test_summary_counts() -> None:
    stale = {"spotify-to-plex/items/gone": b"{}",
             "homeassistant/sensor/spotify_to_plex_item_gone/config": b"{}"}
    unchanged = render(Topics(), resolve(LIBRARY).entities)
    first_state = "spotify-to-plex/items/jazz1"
    actual = {**stale, first_state: unchanged[first_state]}
    result = make_result(actual, published=9, removed=2)
    assert result.plan.unchanged == 1
    assert len(result.plan.publish) == 9
    text = summary(result)
    first = text.splitlines()[0]
    assert "4 entities in 2 categories" in first
    assert "9 messages published" in first
    assert "1 unchanged" in first
    assert "2 removed" in first
    assert "2 skipped" in first


def test_summary_skip_reasons() -> None:
    text = summary(make_result())
    assert "skipped 1: no Plex playlist in playlists.json: 'Unmapped One'" in text
    assert "skipped 1: no Plex album in track_links.json: 'Unmapped Two'" in text


def test_summary_many_skipped_are_shortened() -> None:
    result = make_result()
    skipped = tuple(Skipped(f"id{i}", f"Name {i}", "spotify-album", "no match")
                    for i in range(8))
    result = SyncResult(result.entities, skipped, result.plan, 0, 0)
    text = summary(result)
    assert "skipped 8: no match: 'Name 0', 'Name 1', 'Name 2', 'Name 3', 'Name 4' and 3 more" \
        in text
    assert "Name 5" not in text


def test_summary_dry_run_uses_the_plan() -> None:
    result = make_result({"spotify-to-plex/items/gone": b"{}"}, published=0)
    text = summary(result, dry_run=True)
    assert f"{len(result.plan.publish)} messages would publish" in text
    assert "1 would be removed" in text


def test_summary_errors_and_warnings() -> None:
    warnings = tuple(f"w{i}" for i in range(25))
    text = summary(make_result(errors=("playlists.json: empty",), warnings=warnings))
    assert "error: playlists.json: empty" in text
    assert "warning: w0" in text
    assert "warning: w19" in text
    assert "warning: w20" not in text
    assert "and 5 more warnings" in text


def test_summary_nothing_to_do() -> None:
    result = SyncResult((), (), Plan(unchanged=2), 0, 0)
    first = summary(result).splitlines()[0]
    assert "0 entities in 0 categories" in first
    assert "0 messages published" in first
    assert "2 unchanged" in first


def test_entity_table() -> None:
    table = entity_table(make_result(), Topics())
    lines = table.splitlines()
    assert lines[0].split() == ["entity", "name", "category", "media_content_id"]
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + 4
    assert any("sensor.spotify_to_plex_item_jazz1" in line for line in lines)


# --- manifest ------------------------------------------------------------------------------


@pytest.fixture
def dry_settings(tmp_path: Path) -> Settings:
    return load_settings(["--dry-run", "--settings-dir", str(tmp_path)],
                         {"MQTT_BROKER_URL": f"mqtts://ha:{PASSWORD}@broker.local:8883"})


def test_manifest(dry_settings: Settings, tmp_path: Path) -> None:
    assert dry_settings.mqtt.password is not None
    result = make_result()
    path = write_manifest(dry_settings, Topics(), result, render(Topics(), result.entities),
                          ["spotify-to-plex/items/old"])
    assert path == tmp_path / MANIFEST
    raw = path.read_text(encoding="utf-8")
    assert PASSWORD not in raw
    manifest = json.loads(raw)
    assert manifest["config"]["mqtt"]["password"] == MASK
    assert manifest["config"]["mqtt"]["broker"] == "mqtts://broker.local:8883"
    assert manifest["categories"] == {"Jazz": 3, "Rock": 1}
    assert manifest["would_remove"] == ["spotify-to-plex/items/old"]
    assert set(manifest["would_publish"]) == {t for t, _ in result.plan.publish}
    entities = {e["id"]: e for e in manifest["entities"]}
    assert set(entities) == {"jazz1", "jazz2", "kind", "plex://album/1"}
    jazz = entities["jazz1"]
    assert jazz["entity_id"] == "sensor.spotify_to_plex_item_jazz1"
    assert jazz["state_topic"] == "spotify-to-plex/items/jazz1"
    assert jazz["config_topic"] == "homeassistant/sensor/spotify_to_plex_item_jazz1/config"
    assert jazz["state"]["media_content_id"] == "plex://1"
    assert jazz["state"]["plex_path"] == "/library/metadata/1"
    assert jazz["config"]["default_entity_id"] == "sensor.spotify_to_plex_item_jazz1"
    assert {s["id"] for s in manifest["skipped"]} == {"nomap1", "nomap2"}
    stats = manifest["statistics"]
    assert stats["entities"] == 4
    assert stats["by_type"] == {"spotify-playlist": 2, "spotify-album": 1, "plex-media": 1}
    assert stats["categories"] == 2
    assert stats["skipped"] == 2
    assert stats["messages_to_publish"] == len(result.plan.publish)
    assert stats["messages_to_remove"] == 1
    assert manifest["generated_at"]
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST]


def test_manifest_with_env_password(tmp_path: Path) -> None:
    settings = load_settings(["--dry-run", "--settings-dir", str(tmp_path)],
                             {"MQTT_BROKER_URL": "ws://broker.local:9001/mqtt",
                              "MQTT_USERNAME": "ha", "MQTT_PASSWORD": PASSWORD})
    path = write_manifest(settings, Topics(), make_result(errors=("x: broken",)), {}, [])
    raw = path.read_bytes()
    assert PASSWORD.encode() not in raw
    manifest = json.loads(raw)
    assert manifest["config"]["mqtt"]["username"] == "ha"
    assert manifest["errors"] == ["x: broken"]


def test_manifest_without_broker(tmp_path: Path) -> None:
    settings = load_settings(["--dry-run", "--settings-dir", str(tmp_path)], {})
    manifest = json.loads(write_manifest(settings, Topics(), make_result(), {}, []).read_text())
    assert manifest["config"]["mqtt"]["broker"] is None
    assert manifest["config"]["mqtt"]["password"] is None


# --- ledger and atomic writes --------------------------------------------------------------


def test_ledger_round_trip(tmp_path: Path) -> None:
    write_ledger(tmp_path, make_result().entities, "spotify_to_plex")
    entries = read_ledger(tmp_path)
    assert LedgerEntry("jazz1", "sensor.spotify_to_plex_item_jazz1", "Jazz") in entries
    assert len(entries) == 4


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('["a", "b"]', (LedgerEntry("a"), LedgerEntry("b"))),
        ('{"items": ["a"]}', (LedgerEntry("a"),)),
        ('[{"id": "a", "entity_id": "sensor.x", "category": "J"}, {"no": 1}, 5]',
         (LedgerEntry("a", "sensor.x", "J"),)),
        ("", ()),
        ("{", ()),
        ('"text"', ()),
    ],
)
def test_read_ledger_formats(tmp_path: Path, content: str,
                             expected: tuple[LedgerEntry, ...]) -> None:
    (tmp_path / LEDGER).write_text(content, encoding="utf-8")
    assert read_ledger(tmp_path) == expected


def test_read_ledger_missing(tmp_path: Path) -> None:
    assert read_ledger(tmp_path) == ()


def test_write_json_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": "日本"})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_write_json_atomic_does_not_create_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_json_atomic(tmp_path / "typo" / "out.json", {"a": 1})
    assert not (tmp_path / "typo").exists()


def test_write_json_atomic_failure_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
