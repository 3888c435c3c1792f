"""Logs that suit a big library: summaries per reason and per file at INFO, one line per
item only at debug, paho's per-packet lines only at `trace`.

The pure parts (grouping, levels) run without I/O; the one-shots run the CLI as a user does
against a real Mosquitto and count the lines it prints.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from library_files import SettingsDir, big_library, run_cli
from mosquitto import Mosquitto
from spotify_to_plex_mqtt.cli import setup_logging
from spotify_to_plex_mqtt.core.entities import Skipped
from spotify_to_plex_mqtt.core.input_report import (
    InputReport,
    malformed_by_file,
    malformed_lines,
    skipped_by_reason,
)
from spotify_to_plex_mqtt.core.library import parse_saved_items
from spotify_to_plex_mqtt.settings.config import load_settings
from spotify_to_plex_mqtt.settings.values import ConfigError

URL = "mqtt://127.0.0.1:1883"
PAHO = logging.getLogger("spotify_to_plex_mqtt.paho")
OURS = logging.getLogger("spotify_to_plex_mqtt")

# -- levels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "env", "level"),
    [
        ([], {}, "info"),
        (["-d"], {}, "debug"),
        ([], {"DEBUG": "mqtt"}, "debug"),
        ([], {"DEBUG": "*"}, "debug"),
        ([], {"DEBUG": "mqtt-packets"}, "trace"),
        ([], {"LOG_LEVEL": "TRACE"}, "trace"),
        ([], {"LOG_LEVEL": "warn"}, "warning"),
        (["--log-level", "error"], {"LOG_LEVEL": "trace"}, "error"),  # the flag wins
        (["-d"], {"LOG_LEVEL": "trace"}, "trace"),  # else the most verbose
        (["-d"], {"LOG_LEVEL": "warning"}, "debug"),
    ],
)
def test_the_log_level(argv: list[str], env: dict[str, str], level: str) -> None:
    settings = load_settings(argv, {"MQTT_BROKER_URL": URL, **env})
    assert settings.log_level == level
    assert settings.debug is (level in ("trace", "debug"))


def test_a_wrong_log_level_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"LOG_LEVEL is 'loud'.*trace, debug, info"):
        load_settings([], {"MQTT_BROKER_URL": URL, "LOG_LEVEL": "loud"})


@pytest.fixture
def _restore_levels() -> object:
    saved = [(lg, lg.level) for lg in (PAHO, OURS, logging.getLogger())]
    handlers = logging.getLogger().handlers[:]
    yield None
    for lg, level in saved:
        lg.setLevel(level)
    logging.getLogger().handlers[:] = handlers


@pytest.mark.usefixtures("_restore_levels")
def test_debug_alone_keeps_paho_quiet_and_trace_turns_it_on() -> None:
    setup_logging("debug", ())
    assert OURS.isEnabledFor(logging.DEBUG)
    assert not PAHO.isEnabledFor(logging.DEBUG)
    setup_logging("trace", ())
    assert PAHO.isEnabledFor(logging.DEBUG)
    setup_logging("error", ())
    assert not OURS.isEnabledFor(logging.WARNING)
    assert not PAHO.isEnabledFor(logging.WARNING)


# -- summaries (pure) -------------------------------------------------------------------------


def test_skipped_items_are_one_line_per_reason_with_the_first_names() -> None:
    skipped = [Skipped(f"id{n}", f"Name {n}", "spotify-album", "no Plex album in "
                       "track_links.json") for n in range(120)]
    skipped.append(Skipped("p", "", "spotify-playlist", "no Plex playlist in playlists.json"))
    assert skipped_by_reason(skipped) == [
        "skipped 120: no Plex album in track_links.json: 'Name 0', 'Name 1', 'Name 2', "
        "'Name 3', 'Name 4' and 115 more",
        "skipped 1: no Plex playlist in playlists.json: 'p'",
    ]


def test_malformed_entries_are_counted_per_file_with_the_first_reasons() -> None:
    data = [{"type": "spotify-playlist", "id": f"x{n}", "title": "T", "label": n}
            for n in range(40)]
    data.append({"type": "spotify-playlist", "id": "ok", "title": "Fine", "label": "Jazz"})
    warnings = parse_saved_items(data).warnings
    other = "the broker returned only part of its retained messages"
    grouped, rest = malformed_by_file([*warnings, other])
    assert rest == [other]
    [saved] = grouped
    assert (saved.file, saved.count) == ("spotify_saved_items.json", 40)
    assert saved.first[0] == "entry #1 (id 'x0'): skipped, label not text"
    assert len(saved.first) == 3
    lines = malformed_lines(warnings)
    assert len(lines) == 1
    assert lines[0].startswith("spotify_saved_items.json: 40 malformed entries skipped (first:")


def test_the_service_logs_the_summary_first_and_then_only_when_it_changed(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spotify_to_plex_mqtt")
    report = InputReport()
    gone = Skipped("a", "A", "spotify-playlist", "no Plex playlist in playlists.json")
    bad = "spotify_saved_items.json entry #3 (id 'b'): skipped, 'title' is missing or not text"

    def lines() -> list[str]:
        found = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
        caplog.clear()
        return found

    assert report.update([gone], [bad])
    assert lines() == [
        "spotify_saved_items.json: 1 malformed entries skipped (first: entry #3 (id 'b'): "
        "skipped, 'title' is missing or not text)",
        "not published: 1: no Plex playlist in playlists.json: 'A'"]
    assert not report.update([gone], [bad])
    assert lines() == []
    assert report.update([], [bad])  # the playlist was synced to Plex
    assert [line.split(":")[0] for line in lines()] == ["spotify_saved_items.json"]
    assert report.update([], [])
    assert lines() == ["every labelled item is published again; no malformed entries"]
    assert InputReport().update([], [])
    assert lines() == []  # a clean first sync: silence


# -- the CLI against a real broker -------------------------------------------------------------

PACKET_LINE = "Sending PUBLISH"


def _library_with_300_unpublishable(root: Path) -> SettingsDir:
    lib = big_library(root, 9700)
    for n in range(100):
        lib.add_playlist(f"unsynced{n:03d}", f"Not in Plex {n}", "Jazz")  # no playlists.json
        lib.add_album(f"unmatched{n:03d}", f"Unmatched {n}", "Rock")  # no track link
        lib.items.append({"type": "spotify-playlist", "id": f"numlabel{n:03d}",
                          "title": f"Label is a number {n}", "label": n})
    return lib.write()


def _env(broker: Mosquitto, **extra: str) -> dict[str, str]:
    return {"MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": broker.username,
            "MQTT_PASSWORD": broker.password, **extra}


@pytest.mark.broker
def test_a_one_shot_of_10k_items_with_300_unpublishable_prints_at_most_40_lines(
        fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    lib = _library_with_300_unpublishable(tmp_path / "settings")
    args = ("--one-shot", "--settings-dir", str(lib.root))

    result = run_cli(*args, env=_env(fresh_mosquitto), timeout=180)

    # 1: the 100 malformed entries are an input problem, reported like an unreadable file.
    assert result.returncode == 1, result.output[-3000:]
    lines = result.output.strip().splitlines()
    assert len(lines) <= 40, "\n".join(lines)
    text = result.output
    assert "9700 entities" in text
    assert "skipped 100: no Plex playlist in playlists.json" in text
    assert "skipped 100: no Plex album in track_links.json: 'Unmatched 0'" in text
    assert "and 95 more" in text
    assert "spotify_saved_items.json: 100 malformed entries skipped" in text
    assert "100 entries cannot be used" in text

    # --debug: one line per item left out, but none of paho's per-packet lines.
    debug = run_cli(*args, "--debug", env=_env(fresh_mosquitto), timeout=180)
    assert debug.returncode == 1, debug.output[-3000:]
    assert "not published: spotify-album 'Unmatched 7'" in debug.output
    assert "label not text" in debug.output
    assert PACKET_LINE not in debug.output
    assert len(debug.output.splitlines()) < 1000


@pytest.mark.broker
def test_paho_packets_are_logged_only_at_trace(fresh_mosquitto: Mosquitto,
                                               tmp_path: Path) -> None:
    lib = big_library(tmp_path / "settings", 3).write()
    args = ("--one-shot", "--settings-dir", str(lib.root))
    trace = run_cli(*args, env=_env(fresh_mosquitto, DEBUG="mqtt-packets"))
    assert trace.returncode == 0, trace.output
    assert PACKET_LINE in trace.output
    # Secrets stay out of even the packet log.
    assert fresh_mosquitto.password not in trace.output
