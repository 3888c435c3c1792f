"""`purge`: every retained message of ours goes, every other publisher's stays.

Against a real Mosquitto with its default queue (`max_queued_messages 1000`), at 10k items,
with the original service's leftovers and other publishers' messages under the same
prefixes. The listing and the prompt are pure and tested without I/O.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from library_files import big_library, cli_env, run_cli, varied_library
from mosquitto import Mosquitto, publish_retained, retained
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.library import LEDGER, PLAYLISTS, SAVED_ITEMS, TRACK_LINKS
from spotify_to_plex_mqtt.modes.oneshot import one_shot
from spotify_to_plex_mqtt.modes.purge import confirm, kind_of, listing, run_purge
from spotify_to_plex_mqtt.settings.config import load_settings
from spotify_to_plex_mqtt.settings.values import ConfigError
from test_oneshot import OTHERS, _original_service_leftovers, config

DEFAULT = Topics()
KIDS = {  # another instance, whose prefix extends ours
    "homeassistant/sensor/spotify_to_plex_kids_item_x/config": config(
        "spotify_to_plex_kids_item_x", name="X", state_topic="spotify-to-plex-kids/items/x"),
    "spotify-to-plex-kids/items/x": b'{"id":"x"}',
    "spotify-to-plex-kids/status": b"online",
    # Under our own prefix, but not a message this service publishes.
    "spotify-to-plex/command/refresh": b"refresh",
}
FOREIGN = {**OTHERS, **KIDS}


def _env(broker: Mosquitto, **extra: str) -> dict[str, str]:
    return {"MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": broker.username,
            "MQTT_PASSWORD": broker.password, **extra}


# -- pure ---------------------------------------------------------------------------------------


def test_the_listing_counts_each_kind_and_shows_the_first_topics() -> None:
    found = [DEFAULT.status, DEFAULT.categories_state, DEFAULT.bridge_state,
             "homeassistant/button/spotify_to_plex_bridge_refresh/config",
             *DEFAULT.item_topics("abc"), *DEFAULT.item_topics("def"),
             "homeassistant/sensor/item_abc/config", "spotify_to_plex/items/abc/state"]
    assert kind_of(DEFAULT, DEFAULT.item_state("abc")) == "item states"
    assert kind_of(DEFAULT, "spotify_to_plex/items/abc/state") == "original service's leftovers"
    lines = listing(DEFAULT, found)
    assert lines[0] == ("10 retained messages of ours on the broker: 2 bridge entities, "
                        "1 categories, 2 item configs, 2 item states, "
                        "2 original service's leftovers, 1 status")
    assert len(lines) == 11
    more = listing(DEFAULT, [DEFAULT.item_state(f"i{n}") for n in range(25)])
    assert more[-1] == "  ... and 15 more"


def test_purge_asks_on_a_terminal_and_removes_only_on_yes(
        capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[str] = []

    def ask(answer: str) -> bool:
        def prompt(question: str) -> str:
            asked.append(question)
            return answer
        return confirm(3, prompt, lambda: True)

    assert ask("y") is True
    assert ask(" YES ") is True
    assert ask("") is False
    assert ask("n") is False
    assert asked[0] == "Remove these 3 retained messages? [y/N] "
    assert confirm(3, lambda q: pytest.fail("asked without a terminal"), lambda: False) is False
    assert "purge --yes" in capsys.readouterr().out


# -- a real broker ------------------------------------------------------------------------------


@pytest.mark.broker
def test_purge_lists_then_removes_ours_and_the_originals_leftovers_only(
        clean_broker: Mosquitto, tmp_path: Path) -> None:
    lib = varied_library(tmp_path / "settings").write()
    publish_retained(clean_broker, {**_original_service_leftovers(), **FOREIGN})
    args = ("--settings-dir", str(lib.root))
    assert run_cli("--one-shot", *args, env=_env(clean_broker)).returncode == 0
    before = retained(clean_broker)

    listed = run_cli("purge", *args, env=_env(clean_broker))  # no terminal, no --yes

    assert listed.returncode == 0, listed.output
    assert "retained messages of ours on the broker" in listed.stdout
    assert "nothing removed" in listed.stdout
    assert retained(clean_broker) == before

    purged = run_cli("purge", "--yes", *args, env=_env(clean_broker))

    assert purged.returncode == 0, purged.output
    assert "0 of ours left" in purged.stdout
    assert retained(clean_broker) == FOREIGN
    assert clean_broker.password not in purged.output


@pytest.mark.broker
@pytest.mark.parametrize(("answer", "removed"), [("y", True), ("n", False)])
def test_purge_on_a_terminal_removes_after_a_yes_only(
        clean_broker: Mosquitto, tmp_path: Path, answer: str, removed: bool) -> None:
    lib = varied_library(tmp_path / "settings").write()
    publish_retained(clean_broker, FOREIGN)
    args = ("--settings-dir", str(lib.root))
    assert run_cli("--one-shot", *args, env=_env(clean_broker)).returncode == 0
    before = retained(clean_broker)
    controller, terminal = pty.openpty()  # stdin is a terminal, as for a person
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spotify_to_plex_mqtt", "purge", *args],
            stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=cli_env(_env(clean_broker)))
        os.write(controller, f"{answer}\n".encode())  # the terminal keeps it for the prompt
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(controller)
        os.close(terminal)
    assert proc.returncode == 0, err
    assert "Remove these" in out
    assert retained(clean_broker) == (FOREIGN if removed else before)


@pytest.mark.broker
async def test_purge_at_10k_items_on_a_default_mosquitto_without_a_ledger(
        fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    lib = big_library(tmp_path / "settings", 10_000).write()
    settings = load_settings(["--one-shot", "--settings-dir", str(lib.root)],
                             _env(fresh_mosquitto))
    assert await one_shot(settings) == 0
    publish_retained(fresh_mosquitto, FOREIGN)
    # The worst case: nothing says which topics to read by name (an uninstall that already
    # removed the settings), so every message of ours must come from wildcard reads.
    for name in (LEDGER, SAVED_ITEMS, PLAYLISTS, TRACK_LINKS):
        (lib.root / name).unlink()

    started = time.monotonic()
    code = await run_purge(dataclasses.replace(settings, command="purge", yes=True))
    elapsed = time.monotonic() - started

    assert code == 0
    left = retained(fresh_mosquitto, timeout=30)
    assert left == FOREIGN, sorted(set(left) - set(FOREIGN))[:10]
    print(f"purged 10k items ({2 * 10_000 + 7} messages) in {elapsed:.2f} s")
    assert json.loads(left["homeassistant/sensor/zigbee_temp/config"])["unique_id"]


def test_purge_needs_a_broker_even_with_dry_run() -> None:
    with pytest.raises(ConfigError, match="MQTT_BROKER_URL is not set"):
        load_settings(["purge", "--dry-run"], {})


def _wait_for(condition: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"not within {deadline} s: {what}")
        time.sleep(0.1)


@pytest.mark.broker
def test_purge_refuses_while_the_service_runs_then_clears_its_owner_record(
        clean_broker: Mosquitto, tmp_path: Path) -> None:
    lib = varied_library(tmp_path / "settings").write()
    publish_retained(clean_broker, FOREIGN)
    args = ("--settings-dir", str(lib.root))
    service = subprocess.Popen(
        [sys.executable, "-m", "spotify_to_plex_mqtt", *args, "--no-http", "--interval", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=cli_env(_env(clean_broker)))
    try:
        _wait_for(lambda: DEFAULT.owner in retained(clean_broker)
                  and retained(clean_broker).get(DEFAULT.status) == b"online",
                  "the service's owner record and online")
        before = retained(clean_broker)

        refused = run_cli("purge", "--yes", *args, env=_env(clean_broker))

        assert refused.returncode == 2, refused.output
        assert "stop it first" in refused.output
        assert retained(clean_broker) == before
    finally:
        service.terminate()
        _, err = service.communicate(timeout=30)
    assert service.returncode == 0, err

    purged = run_cli("purge", "--yes", *args, env=_env(clean_broker))

    assert purged.returncode == 0, purged.output
    assert retained(clean_broker) == FOREIGN  # the owner record and `offline` went too
