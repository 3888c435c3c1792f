"""`demo --serve`, run as a user runs it: the embedded broker and the service (with its HTTP
API) stay up until Ctrl-C, and what the demo made is kept to be inspected afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from library_files import cli_env
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.modes.demo import free_port
from spotify_to_plex_mqtt.mqtt.session import BrokerSession
from spotify_to_plex_mqtt.settings.broker_url import BrokerUrl
from spotify_to_plex_mqtt.settings.config import MqttSettings

DEFAULT = Topics()


def _read_until(proc: subprocess.Popen[str], pattern: str, within: float) -> list[str]:
    """Lines of stdout up to the first matching `pattern`; fails after `within` seconds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + within
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # the demo flushes the banner: this does not block
        if not line:
            raise AssertionError(f"the demo ended (code {proc.wait()}):\n{''.join(lines)}")
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no {pattern!r} within {within} s:\n{''.join(lines)}")


async def _categories(port: int) -> bytes:
    settings = MqttSettings(url=BrokerUrl(host="127.0.0.1", port=port, transport="tcp",
                                          tls=False))
    async with BrokerSession(settings, read_only=True) as session:
        read = await session.scan(DEFAULT.scan_filters, DEFAULT.is_ours,
                                  DEFAULT.scan_marker_prefix)
    return read.found[DEFAULT.categories_state]


def test_demo_serve_stays_up_until_ctrl_c_and_keeps_what_it_made(tmp_path: Path) -> None:
    http_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "spotify_to_plex_mqtt", "demo", "--serve",
         "--http-port", str(http_port)],
        cwd=tmp_path, env=cli_env({"TMPDIR": str(tmp_path)}), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        lines = _read_until(proc, r"Serving until Ctrl-C", 60)
        lines += _read_until(proc, r"Edit .*spotify_saved_items.json", 10)
        text = "".join(lines)
        assert "Music Categories sensor" in text
        assert "button.spotify_to_plex_bridge_refresh" in text
        assert "One item's discovery config" in text
        assert '"unique_id": "spotify_to_plex_item_' in text
        broker = re.search(r"host 127\.0\.0\.1, port (\d+)", text)
        assert broker is not None, text
        assert f"http://127.0.0.1:{http_port}/status" in text

        # The service is up: connected, its first sync done, the broker holds the library.
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/status",
                                        timeout=5) as response:
                status = json.load(response)
            if status["last_sync"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # polling another process's state, with a deadline
        assert status["connected"] is True
        assert status["last_sync"]["event"] == "sync_finished"
        categories = json.loads(asyncio.run(_categories(int(broker.group(1)))))
        assert categories["count"] >= 1

        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    kept = re.search(r"Kept for you to inspect: (\S+)", out)
    assert kept is not None, out
    workdir = Path(kept.group(1))
    assert workdir.parent == tmp_path
    dump = json.loads((workdir / "broker_retained.json").read_text())
    assert DEFAULT.categories_state in dump
    assert (workdir / "settings" / "spotify_saved_items.json").is_file()
    assert "Traceback" not in err
