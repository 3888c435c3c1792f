"""Every use of aiomqtt's and paho's private parts, in one place.

aiomqtt 2.x hides the paho client it drives (`aiomqtt.Client._client`) and runs paho's
keepalive bookkeeping in `_misc_loop`, once a second. This package needs both: the paho client
for the publishing window (its `on_publish`, `publish`, `socket`) and the broker's MQTT 5
Receive Maximum (its `on_connect`), and a slower `_misc_loop` so that an idle service is not
woken every second. `check_hooks()` says loudly when an upgrade of aiomqtt or paho removed what
these rely on (tests/mqtt/test_paho_hooks.py runs it).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import aiomqtt
import paho.mqtt.client as paho_client
from paho.mqtt.client import MQTT_ERR_SUCCESS

# paho's keepalive bookkeeping (send PINGREQ, give up on a missing PINGRESP) needs a call
# now and then; aiomqtt makes it every second, which wakes an idle service once a second.
MISC_INTERVAL = 5.0


class KeepaliveClient(aiomqtt.Client):
    """aiomqtt's client, with paho's keepalive bookkeeping every `MISC_INTERVAL` seconds.

    A PINGREQ then goes out 30-35 s after the last packet, well within the broker's 1.5 x
    keepalive (45 s). Overrides aiomqtt 2.x's `_misc_loop`.
    """

    async def _misc_loop(self) -> None:
        while self._client.loop_misc() == MQTT_ERR_SUCCESS:  # noqa: ASYNC110 - a timer
            await asyncio.sleep(MISC_INTERVAL)


def paho_of(client: aiomqtt.Client) -> Any:
    """The paho client under aiomqtt's (aiomqtt does not expose it, nor the socket)."""
    return client._client


def check_hooks() -> list[str]:
    """What is missing of the private parts used here; empty while all are in place.
    Call it in a running event loop: aiomqtt builds its client only there."""
    missing = []
    misc = vars(aiomqtt.Client).get("_misc_loop")
    if misc is None or not inspect.iscoroutinefunction(misc):
        missing.append("aiomqtt.Client._misc_loop (a coroutine method) is gone")
    client = aiomqtt.Client("localhost")
    inner = getattr(client, "_client", None)
    if not isinstance(inner, paho_client.Client):
        missing.append("aiomqtt.Client._client is no longer paho's Client")
    for name in ("loop_misc", "publish", "socket", "on_publish", "on_connect"):
        if not hasattr(paho_client.Client, name):
            missing.append(f"paho.mqtt.client.Client.{name} is gone")
    return missing
