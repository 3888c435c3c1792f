"""How long "play some jazz in the kitchen" takes in a real Home Assistant with a big library.

Run by hand: `python tests/support/ha_assist_latency.py [ITEMS] [ROUNDS]` (default 10,000 items, 10
rounds). It publishes ITEMS labelled playlists (one in eight Jazz) with the service, waits
until Home Assistant shows them all, then times each Assist request from sending
`conversation/process` to the `media_player.play_media` call_service event, and the whole
request. Not part of the suite: publishing 10,000 items into Home Assistant takes minutes.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from ha_instance import (
    PLAYERS,
    HomeAssistant,
    free_port,
    ha_python,
    item_states,
    put_kitchen_speaker_in_the_kitchen,
)
from ha_websocket import until
from library_files import SettingsDir, run_cli
from mosquitto import Mosquitto

CATEGORIES = ("Jazz", "Rock", "Focus", "Kids", "Café Français", "Chill", "Party", "Sleep")


def library(root: Path, count: int) -> SettingsDir:
    lib = SettingsDir(root)
    for index in range(count):
        lib.add_playlist(f"pl{index:05d}x{index * 7919 % 10007:05d}", f"Playlist {index}",
                         CATEGORIES[index % len(CATEGORIES)], str(100000 + index))
    return lib.write()


def _played_since(calls: list[dict[str, Any]], seen: int) -> bool:
    return any(c["data"]["service"] == "play_media" for c in calls[seen:])


async def measure(ha: HomeAssistant, rounds: int) -> tuple[list[float], list[float]]:
    to_call, whole = [], []
    async with ha.websocket() as ws:
        calls = await ws.subscribe("call_service")
        for _ in range(rounds):
            seen = len(calls)
            started = time.perf_counter()
            request = asyncio.create_task(ws.command(
                "conversation/process", text="play some jazz in the kitchen", language="en"))
            await until(partial(_played_since, calls, seen), 30, "play_media",
                        interval=0.001)
            to_call.append(time.perf_counter() - started)
            await request
            whole.append(time.perf_counter() - started)
    return to_call, whole


async def main(count: int, rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="ha-latency-"))
    lib = library(root / "settings", count)
    with Mosquitto(workdir=root / "mosquitto",
                   extra_config=["max_queued_messages 100000"]) as broker:
        ha = HomeAssistant(ha_python(), root / "config", free_port(), {
            "broker": broker.host, "port": broker.port, "username": broker.username,
            "password": broker.password}, PLAYERS)
        ha.launch()
        try:
            await ha.wait_until_running()
            await put_kitchen_speaker_in_the_kitchen(ha)
            started = time.perf_counter()
            published = await asyncio.to_thread(
                run_cli, "--one-shot", "--settings-dir", str(lib.root), env={
                    "MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": broker.username,
                    "MQTT_PASSWORD": broker.password}, timeout=600)
            assert published.returncode == 0, published.output

            async def all_there() -> bool:
                return len(await item_states(ha)) == count

            await until(all_there, 900, f"{count} item sensors", interval=2)
            print(f"published and discovered {count} items in "
                  f"{time.perf_counter() - started:.0f} s")
            # The first request loads the custom sentences: timed apart.
            first, _ = await measure(ha, 1)
            to_call, whole = await measure(ha, rounds)
            print(f"first request to play_media: {first[0] * 1000:.0f} ms")
            print(f"to play_media over {rounds} rounds: median "
                  f"{statistics.median(to_call) * 1000:.0f} ms, max {max(to_call) * 1000:.0f} ms")
            print(f"whole request: median {statistics.median(whole) * 1000:.0f} ms, "
                  f"max {max(whole) * 1000:.0f} ms")
        finally:
            ha.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 10))
