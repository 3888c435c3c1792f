"""Shared fixtures: real Mosquitto brokers the suite starts (tests/support/mosquitto.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mosquitto import INSTALL_HINT, Mosquitto, MosquittoError, clear_retained, find_mosquitto


def _require_mosquitto() -> None:
    """Fail (never skip) when the broker is missing: these tests must not silently vanish."""
    try:
        find_mosquitto()
    except MosquittoError as error:
        pytest.fail(f"{error} (the test suite needs a real Mosquitto: {INSTALL_HINT})")


def _started(broker: Mosquitto) -> Mosquitto:
    _require_mosquitto()
    try:
        broker.start()
    except MosquittoError as error:
        pytest.fail(f"could not start Mosquitto: {error}")
    return broker


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One authenticated plain-TCP broker for the whole session.

    Shared: use `clean_broker` instead when the test must not see others' retained messages.
    """
    broker = Mosquitto(workdir=tmp_path_factory.mktemp("mosquitto-session"))
    _started(broker)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def clean_broker(mosquitto: Mosquitto) -> Mosquitto:
    """The session broker, with every retained message (under ``#``) cleared first."""
    if not mosquitto.running:  # a test stopped or killed the shared broker
        _started(mosquitto)
    clear_retained(mosquitto)
    return mosquitto


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of the test's own (auth on, plain TCP, no persistence): free to restart/kill."""
    broker = Mosquitto(workdir=tmp_path / "mosquitto")
    _started(broker)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def make_mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Factory for started brokers with any `Mosquitto` options (e.g. ``persistence=True``);
    all of them are stopped at the end of the test."""
    brokers: list[Mosquitto] = []

    def make(**options: Any) -> Mosquitto:
        options.setdefault("workdir", tmp_path / f"mosquitto-{len(brokers)}")
        broker = Mosquitto(**options)
        brokers.append(broker)
        return _started(broker)

    try:
        yield make
    finally:
        for broker in brokers:
            broker.close()


@pytest.fixture(scope="session")
def mosquitto_tls_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A session broker with TLS (`Mosquitto.ca_file`) and websockets listeners as well."""
    broker = Mosquitto(
        tls=True, websockets=True, workdir=tmp_path_factory.mktemp("mosquitto-tls-ws")
    )
    _started(broker)
    try:
        yield broker
    finally:
        broker.close()
