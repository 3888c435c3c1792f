"""Shared pieces of the benchmark: brokers, a watching subscriber, the `mosquitto_pub`
reference, the Plex stand-in process, and CLI subprocess helpers."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt

from mosquitto import Mosquitto, connected_client
from spotify_to_plex_mqtt.public import MqttSettings, Secret, parse_broker_url

from . import REPO, SRC
from .plex_server import MACHINE_ID, TOKEN

# Variables of the service that must not leak from the caller's shell into a measured run.
_OURS = ("MQTT_", "PLEX_", "SETTINGS_DIR", "STORAGE_DIR", "ONE_SHOT", "DEBUG", "SYNC_INTERVAL",
         "DISABLE_", "WATCH_POLL", "RETRY_", "DEBOUNCE", "MIN_SYNC_GAP", "API_", "HTTP_")


@contextlib.contextmanager
def broker(workdir: Path) -> Iterator[Mosquitto]:
    """A fresh, empty Mosquitto (tests/support/mosquitto.py, default password auth and limits).

    The only addition is `sys_interval 1`, so that the `$SYS/broker/...` counters used to
    check the broker's side of a measurement are at most a second old.
    """
    with Mosquitto(workdir=workdir, extra_config=["sys_interval 1"]) as running:
        yield running


def broker_stats(running: Mosquitto, *, fresh: bool = True) -> dict[str, float]:
    """The broker's `$SYS/broker/...` counters (name without the prefix -> number).

    With `fresh`, first wait long enough for them to be republished (Mosquitto 2.0 did so
    about every 2 s with `sys_interval 1`).
    """
    if fresh:
        time.sleep(2.5)
    stats: dict[str, float] = {}
    # read_back's marker has an empty payload: it adds nothing to publish/bytes/received.
    for topic, payload in read_back(running, ["$SYS/broker/#"], timeout=10.0).items():
        with contextlib.suppress(ValueError, IndexError):
            stats[topic.removeprefix("$SYS/broker/")] = float(payload.split()[0])
    return stats


def mqtt_settings(running: Mosquitto, protocol: str = "auto") -> MqttSettings:
    return MqttSettings(url=parse_broker_url(running.url), username=running.username,
                        password=Secret(running.password), protocol=protocol)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (`q` in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- watching the broker ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    at: float  # time.monotonic() on arrival
    topic: str
    payload: bytes
    retained: bool


@dataclass
class Watcher:
    """A paho subscriber (network loop in its own thread) that timestamps every message."""

    running: Mosquitto
    filters: Sequence[str]
    settle: bool = False
    messages: list[Seen] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Watcher:
        client = self._stack.enter_context(connected_client(self.running, timeout=10.0))
        client.on_message = self._on_message
        subscribed = threading.Event()
        client.on_subscribe = lambda *_args: subscribed.set()
        client.subscribe([(f, 0) for f in self.filters])
        if not subscribed.wait(10.0):
            raise TimeoutError(f"no SUBACK for {list(self.filters)}")
        if self.settle:
            # The broker sends the retained messages before it handles our next packet: a
            # marker published now (on a topic one of the filters matches) comes after them.
            marker = f"{self.filters[0].rstrip('#')}_scan/bench-{uuid.uuid4().hex}"
            client.publish(marker, b"", qos=1)
            self.wait_for(marker, 0.0, timeout=120.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _on_message(self, _client: mqtt.Client, _userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        seen = Seen(time.monotonic(), message.topic, bytes(message.payload),
                    bool(message.retain))
        with self._arrived:
            self.messages.append(seen)
            self._arrived.notify_all()

    def wait_for(self, topic_prefix: str, after: float, contains: bytes = b"",
                 timeout: float = 30.0) -> Seen:
        """The first message on a topic starting with `topic_prefix` that arrived after
        `after` and whose payload contains `contains`."""
        deadline = time.monotonic() + timeout
        checked = 0
        with self._arrived:
            while True:
                for seen in self.messages[checked:]:
                    if seen.at >= after and seen.topic.startswith(topic_prefix) \
                            and contains in seen.payload:
                        return seen
                checked = len(self.messages)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"nothing on {topic_prefix!r} within {timeout} s")
                self._arrived.wait(remaining)

    def live_between(self, start: float, end: float,
                     ignore: str | tuple[str, ...] = "") -> list[Seen]:
        """Messages forwarded live (not retained ones sent on subscribe) in [start, end]."""
        with self._arrived:
            return [m for m in self.messages if start <= m.at <= end and not m.retained
                    and not (ignore and m.topic.startswith(ignore))]


def read_back(running: Mosquitto, topics: Sequence[str], chunk: int = 500,
              timeout: float = 60.0) -> dict[str, bytes]:
    """The retained messages on exactly `topics` (or on a few small wildcard filters), read
    `chunk` topics per SUBSCRIBE.

    One subscription to a wildcard cannot do this: Mosquitto queues at most
    `max_queued_messages` (default 1000) packets per client and silently drops the rest of
    the retained messages a subscription matches (see README).
    """
    found: dict[str, bytes] = {}
    arrived = threading.Condition()
    marker = f"bench-read-back/{uuid.uuid4().hex}"
    markers: list[int] = []

    def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with arrived:
            if message.topic == marker:
                markers.append(1)
            elif message.retain:
                found[message.topic] = bytes(message.payload)
            arrived.notify_all()

    deadline = time.monotonic() + timeout
    with connected_client(running, timeout=10.0) as client:
        client.on_message = on_message
        client.subscribe(marker, 0)
        for start in range(0, len(topics), chunk):
            part = list(topics[start:start + chunk])
            client.subscribe([(t, 0) for t in part])
            client.publish(marker, b"", qos=1)  # comes back after the retained ones
            with arrived:
                while len(markers) <= start // chunk:
                    if not arrived.wait(max(0.0, deadline - time.monotonic())):
                        raise TimeoutError(f"read back {len(found)} of {len(topics)}")
            client.unsubscribe(part)
    return found


# -- the reference: mosquitto_pub ------------------------------------------------------------


def mosquitto_pub(running: Mosquitto, payloads: Sequence[bytes], max_inflight: int,
                  workdir: Path) -> float:
    """Seconds `mosquitto_pub -l` takes to publish `payloads` (one per line, QoS 1, retained)
    to one topic, from process start to exit (it exits once the last PUBACK arrived)."""
    if any(b"\n" in p or not p for p in payloads):
        raise ValueError("mosquitto_pub -l needs non-empty payloads without newlines")
    lines = workdir / "payloads.txt"
    lines.write_bytes(b"\n".join(payloads) + b"\n")
    argv = ["mosquitto_pub", "-h", running.host, "-p", str(running.port),
            "-u", running.username, "-P", running.password, "-i", "bench-reference",
            "-q", "1", "-r", "-M", str(max_inflight), "-t", "bench/reference", "-l"]
    with lines.open("rb") as stdin:
        started = time.perf_counter()
        subprocess.run(argv, stdin=stdin, check=True, timeout=600, capture_output=True)
        return time.perf_counter() - started


# -- the Plex stand-in in its own process ---------------------------------------------------


@dataclass
class PlexProcess:
    """`python -m bench.plex_server` for a catalogue of `size` items."""

    size: int
    latency: float
    port: int = 0
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {"PLEX_URL": self.url, "PLEX_TOKEN": TOKEN}

    machine_id = MACHINE_ID

    def __enter__(self) -> PlexProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.plex_server", "--size", str(self.size),
             "--latency", str(self.latency)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env())
        assert self._process.stdout is not None
        line = self._process.stdout.readline().decode()
        if not line.startswith("port "):
            self.__exit__()
            raise RuntimeError(f"the Plex stand-in did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None


# -- the CLI as a subprocess ------------------------------------------------------------------


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without the service's variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC), str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def broker_env(running: Mosquitto) -> dict[str, str]:
    return {"MQTT_BROKER_URL": running.url, "MQTT_USERNAME": running.username,
            "MQTT_PASSWORD": running.password}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cli:
    """`python -m spotify_to_plex_mqtt ARGS` as a user runs it, its stderr collected."""

    args: Sequence[str]
    env: Mapping[str, str]
    lines: list[tuple[float, str]] = field(default_factory=list)
    started: float = 0.0
    process: subprocess.Popen[bytes] | None = None
    _reader: threading.Thread | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __enter__(self) -> Cli:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spotify_to_plex_mqtt", *self.args], cwd=REPO,
            env=dict(self.env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        assert self.process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,),
                                        daemon=True)
        self._reader.start()
        return self

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with self._changed:
                self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))
                self._changed.notify_all()

    def wait_for_line(self, needle: str, timeout: float) -> float:
        """When a stderr line containing `needle` appeared (monotonic clock)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for at, line in self.lines:
                    if needle in line:
                        return at
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"the service exited: {self.output}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {needle!r} within {timeout} s: {self.output}")
                self._changed.wait(min(remaining, 0.5))

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines[-20:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()


def proc_status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a mapping."""
    return proc_status_path(Path(f"/proc/{pid}/status"))


def context_switches(pid: int) -> tuple[int, int, int]:
    """(voluntary, involuntary, threads) summed over every thread of `pid`."""
    voluntary = involuntary = threads = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            status = proc_status_path(task / "status")
            voluntary += int(status["voluntary_ctxt_switches"])
            involuntary += int(status["nonvoluntary_ctxt_switches"])
            threads += 1
    return voluntary, involuntary, threads


def proc_status_path(path: Path) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in
            (line.partition(":") for line in path.read_text().splitlines())}


def mib(value: str) -> float:
    """`12345 kB` -> MiB."""
    return int(value.split(maxsplit=1)[0]) / 1024


def temp_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="spotify-to-plex-bench-"))
