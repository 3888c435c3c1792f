"""6. Secrets never leak, in any mode.

Distinctive values for the broker password, the Plex token and the API token are given to
every mode of the command line, as a user would: one-shot (right and wrong password, the
password in the URL and in MQTT_PASSWORD), the service (`--debug`, its HTTP API: every
route, error responses, the WebSocket event stream, then SIGTERM), dry run, demo (which
ignores the MQTT settings but must not print them), and configuration errors that quote
malformed settings holding the secrets. None of the values may appear in stdout, stderr,
any HTTP response (body or headers), any WebSocket message, any file in the settings
directories (ledger, manifest), or any retained message on the broker. The Plex stand-in
checks that the token was really used (in its header), so its absence is not an accident.
"""

# ruff: noqa: S105 - made-up, distinctive secrets whose absence is checked

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import aiohttp
import pytest

from mosquitto import Mosquitto, retained
from plex_standin import PlexStandIn
from reliability_support import cli_argv, cli_env, contains_any, make_library

pytestmark = pytest.mark.broker

PASSWORD = "Pw-Distinct-7f3a91"
PLEX_TOKEN = "Tok-Distinct-c2b8e4"
API_TOKEN = "Api-Distinct-5d1e77"
SECRETS = (PASSWORD, PLEX_TOKEN, API_TOKEN)
USER = "rel-user"


class Outputs:
    """Everything the modes showed anyone, by where it came from."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def add(self, where: str, text: str | bytes) -> None:
        self.texts[where] = text.decode("utf-8", "replace") if isinstance(text, bytes) \
            else text

    def leaks(self) -> dict[str, list[str]]:
        found = {where: contains_any(text, SECRETS) for where, text in self.texts.items()}
        return {where: secrets for where, secrets in found.items() if secrets}


async def run(args: list[str], env: Mapping[str, str], out: Outputs, name: str,
              limit: float = 60.0) -> int:
    process = await asyncio.create_subprocess_exec(
        *cli_argv(*args), env=cli_env(env), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(limit):
        stdout, stderr = await process.communicate()
    out.add(f"{name} stdout", stdout)
    out.add(f"{name} stderr", stderr)
    assert process.returncode is not None
    return process.returncode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def exercise_http(base: str, out: Outputs) -> dict[str, int]:
    """Every route, right and wrong token, errors, and the event stream; returns statuses."""
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    wrong = {"Authorization": f"Bearer {API_TOKEN}x"}
    statuses: dict[str, int] = {}
    async with aiohttp.ClientSession(base) as session:
        async def call(name: str, method: str, path: str, **kwargs: object) -> None:
            async with session.request(method, path, **kwargs) as response:  # type: ignore[arg-type]
                body = await response.read()
                statuses[name] = response.status
                out.add(f"http {name}", body)
                out.add(f"http {name} headers", json.dumps(dict(response.headers)))

        async with session.ws_connect("/events", headers=auth) as ws:
            await call("sync", "POST", "/sync", headers=auth)
            await call("sync wait", "POST", "/sync?wait=true", headers=auth)
            messages: list[str] = []
            async with asyncio.timeout(10):
                while not any('"sync_finished"' in m for m in messages):
                    messages.append(await ws.receive_str())
            out.add("websocket", "\n".join(messages))
        for path in ("/status", "/health", "/entities", "/entities?category=Jazz", "/metrics",
                     "/openapi.json", "/nowhere"):
            await call(f"GET {path}", "GET", path)
        await call("sync no token", "POST", "/sync")
        await call("sync wrong token", "POST", "/sync", headers=wrong)
        await call("sync bad query", "POST", "/sync?wait=maybe", headers=auth)
        await call("sync too big", "POST", "/sync", headers=auth, data=b"x" * 200_000)
        await call("DELETE /status", "DELETE", "/status", headers=auth)
        await call("events no token", "GET", "/events")
        await call("events wrong token", "GET", "/events", headers=wrong)
        await call("events not websocket", "GET", "/events", headers=auth)
    return statuses


async def wait_healthy(base: str, deadline: float = 30.0) -> None:
    started = time.monotonic()
    async with aiohttp.ClientSession(base) as session:
        while time.monotonic() - started < deadline:
            try:
                async with session.get("/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"the service's /health did not answer 200 within {deadline} s")


async def test_no_mode_leaks_a_secret(  # noqa: PLR0915 - one scenario, many modes
        make_mosquitto: Callable[..., Mosquitto], tmp_path: Path) -> None:
    broker = make_mosquitto(username=USER, password=PASSWORD)
    settings_dir = make_library(tmp_path / "settings", 40, seed=61).write().root
    demo_dir = make_library(tmp_path / "demo-settings", 10, seed=62).write().root
    url = f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{broker.port}"
    out = Outputs()
    codes: dict[str, int] = {}
    async with PlexStandIn(token=PLEX_TOKEN) as plex:
        plex_env = {"PLEX_URL": plex.url, "PLEX_TOKEN": PLEX_TOKEN, "API_TOKEN": API_TOKEN}
        in_url = {"MQTT_BROKER_URL": url, **plex_env}
        in_vars = {"MQTT_BROKER_URL": broker.url, "MQTT_USERNAME": USER,
                   "MQTT_PASSWORD": PASSWORD, **plex_env}
        sdir = ["--settings-dir", str(settings_dir)]

        codes["one-shot (password in URL)"] = await run(
            ["--one-shot", "--debug", *sdir], in_url, out, "one-shot url")
        codes["one-shot (MQTT_PASSWORD)"] = await run(
            ["--one-shot", *sdir], {**in_vars, "DEBUG": "*"}, out, "one-shot vars")
        codes["one-shot, wrong password"] = await run(
            ["--one-shot", "--debug", *sdir], {**in_vars, "MQTT_PASSWORD": f"{PASSWORD}-x"},
            out, "one-shot wrong")
        codes["one-shot, wrong password in URL"] = await run(
            ["--one-shot", "--debug", *sdir],
            {**in_url, "MQTT_BROKER_URL": url.replace(PASSWORD, f"x-{PASSWORD}")},
            out, "one-shot wrong url")
        codes["dry run"] = await run(["--dry-run", "--debug", *sdir], in_url, out, "dry-run")
        # TMPDIR: the work directory the demo keeps is checked with the other files.
        demo_tmp = tmp_path / "demo-tmp"
        demo_tmp.mkdir()
        codes["demo"] = await run(["demo", "--debug", "--settings-dir", str(demo_dir)],
                                  {**in_url, "TMPDIR": str(demo_tmp)}, out, "demo")
        for name, env in {
            "bad port in URL": {**in_url, "MQTT_BROKER_URL": url.replace(
                str(broker.port), "99999")},
            "unencoded / in password": {**in_url, "MQTT_BROKER_URL":
                                        f"mqtt://{USER}:{PASSWORD}/x@127.0.0.1:1883"},
            "bad scheme": {**in_url, "MQTT_BROKER_URL": url.replace("mqtt://", "mqtx://")},
            "path on mqtt://": {**in_url, "MQTT_BROKER_URL": f"{url}/{PASSWORD}"},
            "password without user": {**in_vars, "MQTT_USERNAME": ""},
            "bad IPv6 host": {**in_url, "MQTT_BROKER_URL":
                              f"mqtt://{USER}:{PASSWORD}@[::1:1883"},
        }.items():
            codes[f"config error: {name}"] = await run(["--one-shot", *sdir], env, out, name)
        for name, plex_url in {
            "Plex URL with the token as user": f"http://x:{PLEX_TOKEN}@{plex.url[7:]}",
            "Plex URL with the token in the query": f"{plex.url}/?X-Plex-Token={PLEX_TOKEN}",
            "Plex URL with the token as port": f"http://127.0.0.1:{PLEX_TOKEN}",
        }.items():
            codes[name] = await run(["--one-shot", *sdir], {**in_vars, "PLEX_URL": plex_url},
                                    out, name)

        # The service, with its HTTP API, until SIGTERM.
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            *cli_argv("--debug", "--http-port", str(port), "--debounce", "0.1", "--min-gap",
                      "0.1", *sdir),
            env=cli_env(in_url), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_healthy(base)
            statuses = await exercise_http(base, out)
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                stdout, stderr = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        out.add("service stdout", stdout)
        out.add("service stderr", stderr)
        assert process.returncode is not None
        codes["service, SIGTERM"] = process.returncode
        token_used = sum(seen.token_ok for seen in plex.log)

    assert list(demo_tmp.glob("*/broker_retained.json"))
    for directory in (settings_dir, demo_dir, demo_tmp):
        for path in directory.rglob("*"):
            if path.is_file():
                out.add(f"file {path.relative_to(tmp_path)}", path.read_bytes())
    for topic, payload in (await asyncio.to_thread(retained, broker)).items():
        out.add(f"retained {topic}", topic.encode() + b" " + payload)

    assert out.leaks() == {}
    # The runs did what they should, so the absence of secrets means something.
    assert codes["one-shot (password in URL)"] == 0, out.texts["one-shot url stderr"]
    assert codes["one-shot (MQTT_PASSWORD)"] == 0
    assert codes["one-shot, wrong password"] == 1
    assert "refused the credentials" in out.texts["one-shot wrong stderr"]
    assert codes["dry run"] == 0
    assert codes["demo"] == 0
    assert codes["service, SIGTERM"] == 0
    assert all(code == 2 for name, code in codes.items() if name.startswith("config error"))
    for name in ("Plex URL with the token as user", "Plex URL with the token in the query",
                 "Plex URL with the token as port"):
        assert "PLEX_URL" in out.texts[f"{name} stderr"], name
    assert (settings_dir / "mqtt_dry_run_manifest.json").exists()
    assert (settings_dir / "mqtt_published_items.json").exists()
    assert token_used > 0, "the Plex token was never used"
    assert statuses["sync"] == 202
    assert statuses["sync wait"] == 200
    assert statuses["sync no token"] == statuses["sync wrong token"] == 401
    assert statuses["events no token"] == statuses["events wrong token"] == 401
    assert statuses["sync too big"] == 413
    assert statuses["GET /nowhere"] == 404
    assert statuses["DELETE /status"] == 405
    assert statuses["GET /health"] == 200
    runs = ", ".join(f"{k}={v}" for k, v in codes.items())
    print(f"\n[reliability] secrets: {len(codes)} runs ({runs}), "
          f"{len(statuses)} HTTP exchanges, {len(out.texts)} outputs searched "
          f"(stdout, stderr, HTTP bodies and headers, WebSocket, files, retained "
          f"messages); Plex token used {token_used} times; leaks 0")
