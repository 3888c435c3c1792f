"""11. Resources: an fd flood on the HTTP API, and memory across broker reconnects.

Both run the real command line in a subprocess against a real Mosquitto:

- **fd flood**: the service runs with `RLIMIT_NOFILE` 256 and `FLOOD` idle TCP connections
  are opened to its HTTP API (more than it has descriptors). Measured over `WINDOW` seconds:
  the bytes it logs and the CPU it uses; then a file change must still be synced, and once
  the idle connections are gone `/health` must answer.
- **reconnects**: the broker is SIGKILLed and started again `RECONNECTS` times; after each
  reconnect's sync the service's RSS is read from /proc. The reconnect backoff is scaled
  down (as in section 1 of docs/reliability.md): correctness does not depend on it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mosquitto import Mosquitto
from reliability_support import (
    broker_env,
    cli_env,
    expected_state,
    library_from_files,
    make_library,
    scaled,
    wait_converged,
)
from spotify_to_plex_mqtt.core.discovery import Topics

pytestmark = pytest.mark.broker

NOFILE = 256
FLOOD = 400
WINDOW = 5.0
RECONNECTS = scaled(50)
HZ = 100  # clock ticks per second in /proc/<pid>/stat (Linux USER_HZ)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _health(port: int, timeout: float = 2.0) -> int:
    """The status of `GET /health`, or 0 when nothing answers (not listening yet, or hung)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


@contextmanager
def _service(argv: list[str], env: dict[str, str], log: Path, *,
             limit: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT,
                                   preexec_fn=_limit_fds if limit else None)  # noqa: PLW1509
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _argv(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "spotify_to_plex_mqtt", "--settings-dir", str(root),
            "--interval", "0", "--debounce", "0.05", "--min-gap", "0.05", *extra]


async def _until(predicate: object, what: str, deadline: float = 20.0) -> float:
    assert callable(predicate)
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > deadline:
            pytest.fail(f"{what} did not happen within {deadline} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("cap", ["automatic", "over the fd limit"])
async def test_an_fd_flood_on_the_http_api_is_logged_once_and_syncs_go_on(
        clean_broker: Mosquitto, tmp_path: Path, cap: str) -> None:
    # "automatic": the cap (a quarter of the fd limit) keeps descriptors for the sync, which
    # must go on during the flood. "over the fd limit": accepts fail with EMFILE, which must
    # be logged once, cost no CPU, and the change must be synced once the flood is over.
    over = cap != "automatic"
    topics = Topics()
    lib = make_library(tmp_path / "lib", 20, seed=11).write()
    port = _free_port()
    log = tmp_path / "service.log"
    env = cli_env(broker_env(clean_broker, **({"HTTP_MAX_CONNECTIONS": "2000"} if over else {})))
    with _service(_argv(lib.root, "--http-port", str(port)), env, log, limit=True) as process:
        await _until(lambda: process.poll() is None and _health(port) == 200, "health ok")
        idle: list[socket.socket] = []
        took = None
        try:
            for _ in range(FLOOD):  # idle: connected, never a byte sent
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                idle.append(sock)
            size, cpu = log.stat().st_size, _cpu_seconds(process.pid)
            await asyncio.sleep(WINDOW)  # the measuring window, not a synchronisation
            logged = log.stat().st_size - size
            used = (_cpu_seconds(process.pid) - cpu) / WINDOW
            lib.relabel(lib.items[0]["id"], "Flooded")
            lib.write()
            if not over:
                _, took = await wait_converged(clean_broker, topics, lambda: expected_state(
                    topics, library_from_files(lib.root)), deadline=15.0)
        finally:
            for sock in idle:
                sock.close()
        await _until(lambda: _health(port) == 200, "health after the flood", 15.0)
        if over:  # the periodic sync is off: a retry or the next change brings it
            lib.write()
            _, took = await wait_converged(clean_broker, topics, lambda: expected_state(
                topics, library_from_files(lib.root)), deadline=15.0)
        text = log.read_text(errors="replace")
        errors = text.count("cannot accept connections")
        print(f"fd flood ({cap}): {FLOOD} idle connections, RLIMIT_NOFILE {NOFILE}: logged "
              f"{logged} bytes in {WINDOW:g} s, {errors} accept reports, CPU {used:.0%}, "
              f"change synced {took:.2f} s after")
        assert process.poll() is None, text[-2000:]
        assert logged < (8192 if over else 2048), text[-3000:]
        assert errors == (1 if over else 0), text[-3000:]
        assert text.count("Too many open files") <= 8, text[-3000:]
        assert used < 0.2


RUNNER = """
import sys
from spotify_to_plex_mqtt.service import service
from spotify_to_plex_mqtt.core.backoff import Backoff
def fast(base=1.0, cap=60.0, attempt=0):
    return Backoff(base=base / 100, cap=cap / 100, attempt=attempt)
service.Backoff = fast
from spotify_to_plex_mqtt.cli import main
sys.exit(main(sys.argv[1:]))
"""


async def test_reconnects_do_not_grow_memory(fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    broker, topics = fresh_mosquitto, Topics()
    lib = make_library(tmp_path / "lib", 1000, seed=12).write()
    log = tmp_path / "service.log"
    argv = [sys.executable, "-c", RUNNER, *_argv(lib.root, "--no-http")[3:]]
    expected = expected_state(topics, library_from_files(lib.root))
    with _service(argv, cli_env(broker_env(broker)), log) as process:
        await wait_converged(broker, topics, lambda: expected, deadline=30.0)
        samples = [_rss_mb(process.pid)]
        for _ in range(RECONNECTS):
            synced = log.read_text().count("(reconnect)")
            broker.kill()
            broker.start()
            await _until(lambda s=synced: log.read_text().count("(reconnect)") > s,
                         "the reconnect's sync", 30.0)
            samples.append(_rss_mb(process.pid))
        await wait_converged(broker, topics, lambda: expected, deadline=30.0)
        assert process.poll() is None, log.read_text()[-2000:]
    per = (samples[-1] - samples[0]) / RECONNECTS
    steps = [round(b - a, 2) for a, b in itertools.pairwise(samples)]
    print(f"reconnects: {RECONNECTS}, RSS {samples[0]:.1f} -> {samples[-1]:.1f} MB "
          f"({per:+.3f} MB per reconnect); first steps {steps[:10]}; "
          f"{json.dumps([round(s, 1) for s in samples[::10]])}")
    assert per < 0.1
