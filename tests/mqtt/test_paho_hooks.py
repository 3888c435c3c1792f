"""The private parts of aiomqtt and paho that `mqtt._paho` relies on are still there.

Fails loudly on an upgrade that removes one, instead of a slower keepalive, a publishing
window that never sees a PUBACK, or an ignored Receive Maximum.
"""

from __future__ import annotations

import aiomqtt
import paho.mqtt.client as paho_client
import pytest

from spotify_to_plex_mqtt.mqtt import _paho


async def test_every_private_hook_is_still_in_place() -> None:
    # async: aiomqtt's Client needs a running loop to be built.
    assert _paho.check_hooks() == []


def test_the_keepalive_client_overrides_aiomqtts_own_loop() -> None:
    assert "_misc_loop" in vars(aiomqtt.Client)
    assert vars(_paho.KeepaliveClient)["_misc_loop"] is not vars(aiomqtt.Client)["_misc_loop"]


async def test_paho_of_gives_the_paho_client_under_aiomqtts() -> None:
    assert isinstance(_paho.paho_of(aiomqtt.Client("localhost")), paho_client.Client)


async def test_a_removed_hook_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(aiomqtt.Client, "_misc_loop")
    assert _paho.check_hooks() == ["aiomqtt.Client._misc_loop (a coroutine method) is gone"]
