"""10. Odd files in place of the inputs: FIFOs and 100k-level nesting, through the real CLI.

A FIFO in place of playlists.json, plex.json or the ledger used to hang one-shot forever
and block the service's event loop (no HTTP answer, no exit on SIGTERM); a plex.json or a
ledger nested 100k levels deep gave a `RecursionError` traceback. Each case runs
`python -m spotify_to_plex_mqtt` in a subprocess against a real Mosquitto, with a bound on
every wait; a process that hangs is killed (by its pid) and the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from mosquitto import Mosquitto
from reliability_support import broker_env, cli_argv, cli_env, make_library
from spotify_to_plex_mqtt.core.library import LEDGER, PLAYLISTS

pytestmark = pytest.mark.broker

BOUND = 30.0
# Exit code of one-shot per odd file: an input file fails the sync; Plex and the ledger are
# enrichment (reported, and the sync goes on). A plex.json that cannot be used is a Plex
# configuration error, which one-shot reports by exit code 1 after publishing everything.
FIFO_CASES = {PLAYLISTS: 1, "plex.json": 1, LEDGER: 0}
DEEP_CASES = {"plex.json": 1, LEDGER: 0}


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *cli_argv(*args), env=cli_env(env), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), BOUND)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{' '.join(args)} did not end within {BOUND} s")
    assert process.returncode is not None
    # The summary (on stdout) lists the input errors; the log (stderr) the rest.
    return process.returncode, (out + err).decode("utf-8", "replace")


@pytest.mark.parametrize("name", sorted(FIFO_CASES))
async def test_one_shot_ends_with_a_fifo_in_place_of_a_file(
        clean_broker: Mosquitto, tmp_path: Path, name: str) -> None:
    lib = make_library(tmp_path / "settings", 6, seed=21).write()
    (lib.root / name).unlink(missing_ok=True)
    os.mkfifo(lib.root / name)
    started = time.monotonic()
    code, err = await run_cli("--one-shot", "--settings-dir", str(lib.root),
                              env=broker_env(clean_broker))
    assert code == FIFO_CASES[name], err
    assert "named pipe (FIFO)" in err
    assert name in err
    assert "Traceback" not in err
    print(f"\n[reliability] one-shot with a FIFO as {name}: exit {code} in "
          f"{time.monotonic() - started:.2f} s")


@pytest.mark.parametrize("name", sorted(DEEP_CASES))
async def test_one_shot_reports_a_deeply_nested_file(clean_broker: Mosquitto, tmp_path: Path,
                                                     name: str) -> None:
    lib = make_library(tmp_path / "settings", 6, seed=22).write()
    (lib.root / name).write_text("[" * 100_000 + "]" * 100_000)
    code, err = await run_cli("--one-shot", "--settings-dir", str(lib.root),
                              env=broker_env(clean_broker))
    assert code == DEEP_CASES[name], err
    assert "messages published" in err, err  # enrichment: the sync itself succeeds
    assert "nested too deeply" in err
    assert name in err
    assert "Traceback" not in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_service_keeps_answering_and_stops_with_fifos(clean_broker: Mosquitto,
                                                               tmp_path: Path) -> None:
    lib = make_library(tmp_path / "settings", 6, seed=23).write()
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *cli_argv("--settings-dir", str(lib.root), "--http-port", str(port), "--debounce",
                  "0.05", "--min-gap", "0.05", "--interval", "0"),
        env=cli_env(broker_env(clean_broker)),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []

    async def collect() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            lines.append(line.decode("utf-8", "replace"))

    reader = asyncio.create_task(collect())
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            await until(lambda: any("sync #1" in line for line in lines), "the first sync")
            for name in (PLAYLISTS, "plex.json"):
                (lib.root / name).unlink(missing_ok=True)
                os.mkfifo(lib.root / name)
            await until(lambda: sum("named pipe (FIFO)" in line for line in lines) >= 2,
                        "both FIFOs reported")
            async with http.get(f"http://127.0.0.1:{port}/health") as answer:
                assert answer.status in (200, 503)  # it answers, whatever it thinks
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 15.0)
        stopped = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            reader.cancel()
            await reader
    assert code == 0, "".join(lines)
    assert not any("Traceback" in line for line in lines), "".join(lines)
    print(f"\n[reliability] service with FIFOs: HTTP answered, SIGTERM exit 0 in "
          f"{stopped:.2f} s")


async def until(predicate: object, what: str, deadline: float = 20.0) -> None:
    assert callable(predicate)
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > deadline:
            pytest.fail(f"{what} did not happen within {deadline} s")
        await asyncio.sleep(0.05)
