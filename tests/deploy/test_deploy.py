"""The container and deploy files: Dockerfile, deploy/docker-compose.yml, the Mosquitto ACL.

No container engine runs here, so the image is not built: the Dockerfile is linted with
hadolint, the compose file is validated against the Compose Specification's JSON schema
(check-jsonschema's vendored copy, offline), and what both promise is read from them. The
image's HEALTHCHECK command itself is run against a real service, and the README's ACL
against a real Mosquitto that enforces it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from library_files import SettingsDir, cli_env, run_cli, varied_library
from mosquitto import Mosquitto, MosquittoError

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
ACL = ROOT / "deploy" / "mosquitto.acl"
SERVICE_USER = "spotify-to-plex-mqtt"


def tool(name: str) -> str:
    """A console script of the dev extra; missing, the test fails (never skips)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is missing: pip install -e '.[dev]' (bash .ci/run does)")
    return found


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined) as (KEYWORD, arguments)."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def healthcheck_command() -> list[str]:
    args = dict(final_stage())["HEALTHCHECK"]
    command: list[str] = json.loads(args[args.index("CMD") + 3:].strip())
    return command


# Dockerfile -------------------------------------------------------------------------------

def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([tool("hadolint"), "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_does_fail_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install .\n")
    result = subprocess.run([tool("hadolint"), "--no-color", str(bad)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "latest" is not a pinned tag


def test_the_image_is_slim_unprivileged_and_configured_like_the_command_line() -> None:
    stage = final_stage()
    keywords = dict(stage)
    assert re.fullmatch(r"python:3\.1[1-9]-slim", keywords["FROM"])
    user = keywords["USER"].split(":")[0]
    assert user.isdigit()
    assert int(user) != 0
    assert json.loads(keywords["VOLUME"]) == ["/app/config"]
    assert "SETTINGS_DIR=/app/config" in keywords["ENV"]
    assert json.loads(keywords["ENTRYPOINT"]) == ["spotify-to-plex-mqtt"]
    # Nothing of the configuration is baked in: it comes from the environment at run time.
    assert not re.search(r"MQTT_|API_TOKEN|PLEX_TOKEN", keywords["ENV"])
    assert "/health" in " ".join(healthcheck_command())


# The HEALTHCHECK, run against a real service ----------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.1)


def run_healthcheck(port: int) -> int:
    command = healthcheck_command()
    assert command[0] == "python"
    env = {**os.environ, "HTTP_PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                          timeout=30, check=False).returncode


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> int:
        port = free_port()
        library = varied_library(tmp_path / "settings").write()
        process = subprocess.Popen(
            [sys.executable, "-m", "spotify_to_plex_mqtt", "--settings-dir", str(library.root),
             "--interval", "0", "--no-watch"],
            env=cli_env({**env, "HTTP_PORT": str(port)}), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        started.append(process)
        wait_until(lambda: listening(port) or process.poll() is not None, "HTTP API", 20.0)
        assert process.poll() is None, "the service exited"
        return port

    yield start
    for process in started:
        process.terminate()
        process.wait(20)


@pytest.mark.broker
def test_the_healthcheck_passes_for_a_healthy_service(mosquitto: Mosquitto,
                                                      start_service: Any) -> None:
    prefix = f"hc-{os.getpid()}"
    port = start_service({"MQTT_BROKER_URL": mosquitto.url, "MQTT_USERNAME": mosquitto.username,
                          "MQTT_PASSWORD": mosquitto.password, "MQTT_TOPIC_PREFIX": prefix,
                          "MQTT_DISCOVERY_PREFIX": f"ha-{prefix}"})
    wait_until(lambda: run_healthcheck(port) == 0, "healthy answer", 30.0)


def test_the_healthcheck_fails_while_the_broker_is_unreachable(start_service: Any) -> None:
    port = start_service({"MQTT_BROKER_URL": f"mqtt://127.0.0.1:{free_port()}"})
    assert run_healthcheck(port) != 0


# deploy/docker-compose.yml ----------------------------------------------------------------

def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def test_the_compose_file_follows_the_compose_specification() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_fail_a_wrong_compose_file(tmp_path: Path) -> None:
    wrong = tmp_path / "docker-compose.yml"
    data = compose()
    data["services"]["mosquitto"]["restart"] = ["always"]  # must be a string
    wrong.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(wrong)],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0


def test_the_sidecar_shares_the_settings_volume_next_to_mosquitto() -> None:
    services = compose()["services"]
    app, sidecar = services["spotify-to-plex"], services["spotify-to-plex-mqtt"]
    assert "settings:/app/config" in app["volumes"]
    assert "settings:/app/config" in sidecar["volumes"]
    assert sidecar["environment"]["MQTT_BROKER_URL"] == "mqtt://mosquitto:1883"
    assert sidecar["environment"]["SETTINGS_DIR"] == "/app/config"
    assert {"mosquitto", "spotify-to-plex"} <= set(sidecar["depends_on"])
    assert (COMPOSE.parent / sidecar["build"]["context"] / "Dockerfile").is_file()
    # Every file the compose file mounts is in deploy/.
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (COMPOSE.parent / source).is_file(), source


# The README's Mosquitto ACL, enforced by a real Mosquitto ---------------------------------

@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(username=SERVICE_USER, workdir=tmp_path / "mosquitto",
                       extra_config=[f"acl_file {ACL}"])
    try:
        broker.start()
    except MosquittoError as error:
        pytest.fail(f"could not start Mosquitto: {error}")
    try:
        yield broker
    finally:
        broker.close()


def published_count(stdout: str) -> int:
    match = re.search(r"(\d+) messages published, \d+ unchanged", stdout)
    assert match is not None, f"no summary in {stdout!r}"
    return int(match.group(1))


@pytest.mark.broker
def test_the_acl_lets_the_service_do_its_job(acl_broker: Mosquitto, tmp_path: Path) -> None:
    library: SettingsDir = varied_library(tmp_path / "settings").write()
    env = {"MQTT_BROKER_URL": acl_broker.url, "MQTT_USERNAME": SERVICE_USER,
           "MQTT_PASSWORD": acl_broker.password}
    args = ("--one-shot", "--settings-dir", str(library.root))

    first = run_cli(*args, env=env)
    second = run_cli(*args, env=env)

    assert first.returncode == 0, first.output
    assert published_count(first.stdout) > 0, first.stdout
    # The second run read back everything the first published: nothing to publish again.
    assert second.returncode == 0, second.output
    assert published_count(second.stdout) == 0, second.output
    assert "denied" not in (first.output + second.output).lower()
