"""The service under a real supervisord, with the program section of deploy/supervisord.conf.

The configuration is generated from the deploy file: every section and option is kept,
except the paths (socket, pidfile, log) which go to a temporary directory, and the command,
which runs this checkout with `sys.executable -m spotify_to_plex_mqtt`. The MQTT settings
reach the service as the deploy file intends: through supervisord's inherited environment.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from mosquitto import Mosquitto, collect, retained
from spotify_to_plex_mqtt.core.library import PLAYLISTS, SAVED_ITEMS, TRACK_LINKS

pytestmark = pytest.mark.broker

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "supervisord.conf"
PROGRAM = "spotify-to-plex-mqtt"
SECTION = f"program:{PROGRAM}"
SERVICE_WORST_SHUTDOWN = 5.0 + 2.0 + 3.0  # grace, `offline` publish, tasks (service.py)


def deploy_config() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY_CONF, encoding="utf-8")
    return parser


@dataclass
class Supervisord:
    """A supervisord process running a config generated in `workdir`."""

    config: Path
    log: Path
    stdout: Path
    stderr: Path
    process: subprocess.Popen[bytes]

    def ctl(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.config), *args],
            capture_output=True, text=True, timeout=timeout, check=False)

    def state(self) -> str:
        """RUNNING, STARTING, BACKOFF, STOPPED, ... as `supervisorctl status` shows it."""
        words = self.ctl("status", PROGRAM).stdout.split()
        return words[1] if len(words) > 1 and words[0] == PROGRAM else f"? {words}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def output(self) -> str:
        """What the program wrote: its stdout and stderr go to supervisord's."""
        return "".join(p.read_text(errors="replace") for p in (self.stdout, self.stderr)
                       if p.exists())


def wait_until(condition: Callable[[], bool], what: str, timeout: float,
               describe: Callable[[], str] = lambda: "") -> None:
    """Poll `condition` (state of another process) until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s\n{describe()}")
        time.sleep(0.05)


def write_settings_dir(directory: Path) -> None:
    directory.mkdir(parents=True)
    items = [{"type": "spotify-playlist", "uri": "spotify:playlist:jazz1", "id": "jazz1",
              "title": "Jazz One", "image": "", "label": "Jazz"}]
    (directory / SAVED_ITEMS).write_text(json.dumps(items))
    (directory / PLAYLISTS).write_text(json.dumps({"data": [{"id": "jazz1", "plex": "1001"}]}))
    (directory / TRACK_LINKS).write_text("[]")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for the control socket (AF_UNIX paths are limited to ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sv-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class StartSupervisord(Protocol):
    def __call__(self, env: Mapping[str, str], *, one_log: bool = False) -> Supervisord: ...


@pytest.fixture
def start_supervisord(tmp_path: Path, short_dir: Path) -> Iterator[StartSupervisord]:
    started: list[Supervisord] = []

    def start(env: Mapping[str, str], *, one_log: bool = False) -> Supervisord:
        """`one_log`: supervisord's stdout and stderr go to one file opened as a shell's
        `> file 2>&1` opens it (truncated, not in append mode)."""
        settings_dir = tmp_path / "settings"
        write_settings_dir(settings_dir)
        parser = deploy_config()
        socket = short_dir / "supervisor.sock"
        log = tmp_path / "supervisord.log"
        overrides = {
            # With one_log the deploy file's own logging is what is tested.
            **({} if one_log else {("supervisord", "logfile"): str(log)}),
            ("supervisord", "pidfile"): str(tmp_path / "supervisord.pid"),
            ("supervisord", "childlogdir"): str(tmp_path),
            ("unix_http_server", "file"): str(socket),
            ("supervisorctl", "serverurl"): f"unix://{socket}",
            (SECTION, "command"): (
                f"{sys.executable} -m spotify_to_plex_mqtt --settings-dir {settings_dir} "
                "--debounce 0.3 --min-gap 0 --interval 0 --http-port 0"),
        }
        for (section, option), value in overrides.items():
            parser.set(section, option, value)
        config = tmp_path / "supervisord.conf"
        config.write_text("".join(
            f"[{section}]\n" + "".join(f"{k}={v}\n" for k, v in parser.items(section)) + "\n"
            for section in parser.sections()))
        stdout, stderr = tmp_path / "supervisord.out", tmp_path / "supervisord.err"
        with stdout.open("wb" if one_log else "ab") as out, stderr.open("ab") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(config)],
                env=dict(env), stdout=out, stderr=subprocess.STDOUT if one_log else err,
                cwd=tmp_path)
        supervisord = Supervisord(config, stdout if one_log else log, stdout, stderr, process)
        started.append(supervisord)
        wait_until(lambda: socket.exists() or process.poll() is not None,
                   "supervisord control socket", 15.0, supervisord.output)
        assert process.poll() is None, f"supervisord refused the config:\n{supervisord.output()}"
        return supervisord

    try:
        yield start
    finally:
        for supervisord in started:
            if supervisord.process.poll() is None:
                supervisord.process.terminate()
                try:
                    supervisord.process.wait(30)
                except subprocess.TimeoutExpired:
                    supervisord.process.kill()
                    supervisord.process.wait(10)


def base_env() -> dict[str, str]:
    """The test's environment without anything that configures the service."""
    prefixes = ("MQTT_", "PLEX_", "SUPERVISOR_")
    names = {"SETTINGS_DIR", "STORAGE_DIR", "DEBUG", "API_TOKEN", "SYNC_INTERVAL", "ONE_SHOT"}
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in names}


def test_the_deploy_program_section_is_fit_for_the_service() -> None:
    program = dict(deploy_config().items(SECTION))
    assert program["stopsignal"] == "TERM"
    # supervisord must wait for the service's own bounded shutdown before it SIGKILLs.
    assert float(program["stopwaitsecs"]) > SERVICE_WORST_SHUTDOWN
    # Restarted after a crash or a lost process, but not after a configuration error.
    assert program["autorestart"] == "unexpected"
    assert set(program["exitcodes"].split(",")) == {"0", "2"}
    assert program["startsecs"] == "0"
    # An unset %(ENV_X)s variable would make supervisord reject the whole file.
    parser = deploy_config()
    assert not [v for s in parser.sections() for _, v in parser.items(s) if "%(ENV_" in v]


def test_runs_under_supervisord_and_stops_cleanly(
        mosquitto: Mosquitto, start_supervisord: StartSupervisord,
        ) -> None:
    prefix = f"sv-{uuid.uuid4().hex[:8]}"
    status = f"{prefix}/status"
    env = {**base_env(), "MQTT_BROKER_URL": mosquitto.url, "MQTT_USERNAME": mosquitto.username,
           "MQTT_PASSWORD": mosquitto.password, "MQTT_TOPIC_PREFIX": prefix,
           "MQTT_DISCOVERY_PREFIX": f"ha-{prefix}"}
    sv = start_supervisord(env)

    collect(mosquitto, status, lambda m: (status, b"online") in m, timeout=15.0)
    collect(mosquitto, f"{prefix}/categories", lambda m: any(p for _, p in m), timeout=15.0)
    wait_until(lambda: sv.state() == "RUNNING", "RUNNING state", 15.0,
               lambda: f"{sv.ctl('status').stdout}\n{sv.log_text()}\n{sv.output()}")

    stop = sv.ctl("stop", PROGRAM)

    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"{PROGRAM}: stopped" in stop.stdout
    assert sv.state() == "STOPPED"
    assert f"stopped: {PROGRAM} (exit status 0)" in sv.log_text(), sv.log_text()
    assert retained(mosquitto, [status]) == {status: b"offline"}
    output = sv.output()
    assert "stopped (SIGTERM)" in output, output
    assert "Traceback" not in output
    assert mosquitto.password not in output + sv.log_text()

    shutdown = sv.ctl("shutdown")
    assert shutdown.returncode == 0, shutdown.stdout + shutdown.stderr
    assert sv.process.wait(20) == 0
    assert retained(mosquitto, [status]) == {status: b"offline"}


def stays_false(condition: Callable[[], bool], window: float) -> bool:
    """Whether `condition` stays false for `window` seconds (an absence can only be seen
    over a bounded window; supervisord respawns within 1 s, so a few seconds suffice)."""
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        if condition():
            return False
        time.sleep(0.05)
    return True


def test_a_configuration_error_is_reported_once_and_not_respawned(
        start_supervisord: StartSupervisord) -> None:
    sv = start_supervisord(base_env())  # supervisord accepts the config (checked in start)

    wait_until(lambda: f"exited: {PROGRAM} (exit status 2" in sv.log_text(),
               "exit status 2 of the service", 15.0, lambda: sv.log_text() + sv.output())

    # Respawning cannot fix a missing setting: it only repeats the message (it used to,
    # 10 times in 53 s, because a start shorter than startsecs counts as a failed start).
    assert stays_false(lambda: sv.log_text().count(f"spawned: '{PROGRAM}'") > 1, 4.0), \
        sv.log_text()
    assert sv.state() == "EXITED", sv.ctl("status").stdout
    assert sv.process.poll() is None  # supervisord itself carries on
    output = sv.output()
    assert output.count("MQTT_BROKER_URL is not set") == 1, output
    assert "Traceback" not in output
    shutdown = sv.ctl("shutdown")
    assert shutdown.returncode == 0, shutdown.stdout + shutdown.stderr
    assert sv.process.wait(20) == 0


SERVICE_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) +\S")
SUPERVISORD_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]{4,5} \S")


def test_logs_stay_whole_when_supervisord_output_is_redirected_to_a_file(
        mosquitto: Mosquitto, start_supervisord: StartSupervisord) -> None:
    prefix = f"sv-{uuid.uuid4().hex[:8]}"
    env = {**base_env(), "MQTT_BROKER_URL": mosquitto.url, "MQTT_USERNAME": mosquitto.username,
           "MQTT_PASSWORD": mosquitto.password, "MQTT_TOPIC_PREFIX": prefix,
           "MQTT_DISCOVERY_PREFIX": f"ha-{prefix}", "DEBUG": "*"}
    sv = start_supervisord(env, one_log=True)  # `supervisord ... > file 2>&1`

    collect(mosquitto, f"{prefix}/status", lambda m: (f"{prefix}/status", b"online") in m,
            timeout=15.0)
    wait_until(lambda: "sync #1 (" in sv.output(), "the first sync in the log", 15.0,
               sv.output)
    assert sv.ctl("stop", PROGRAM).returncode == 0
    assert sv.ctl("shutdown").returncode == 0
    assert sv.process.wait(20) == 0

    lines = sv.output().splitlines()
    broken = [line for line in lines
              if not (SERVICE_LINE.match(line) or SUPERVISORD_LINE.match(line))]
    assert broken == [], "\n".join(lines)
    # Nothing overwritten: supervisord's own lines and the service's are both there.
    text = "\n".join(lines)
    assert f"spawned: '{PROGRAM}'" in text
    assert "stopped (SIGTERM)" in text
    assert mosquitto.password not in text
