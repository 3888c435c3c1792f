"""5. Property-based tests of the pure code, over 10k generated examples in all (CI size).

- Loaders: `read_json` on arbitrary bytes, and the three parsers on arbitrary JSON values,
  only ever return a value or raise `FileProblem` naming the file.
- Slugs and topics: for arbitrary libraries (ids that collide by case, unicode, empty
  slugs) and prefixes, every topic `render` (plus the bridge) produces is a valid MQTT topic
  name, every config topic is `<disc>/(sensor|button|binary_sensor)/<[A-Za-z0-9_-]+>/config`,
  no two entities share a topic, unique_id or default_entity_id, every payload is JSON, and
  the service recognises every message it publishes as its own (else it could never clear
  it: a ghost).
- Broker URLs: `parse_broker_url` raises nothing but `BrokerUrlError`, and neither its
  messages, the `display` form, the repr, nor `load_settings`' ConfigError carry the password.
- Reconciliation: `apply_plan(actual, reconcile(desired, actual)) == desired` for any
  actual; with `allow_removal=False` nothing of actual disappears; an unchanged broker gets
  an empty plan; clears come before publishes, states before configs.
"""

# ruff: noqa: S105 - made-up, distinctive secrets whose absence is checked

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plans import apply_plan
from reliability_support import scaled
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.core.entities import resolve
from spotify_to_plex_mqtt.core.library import (
    ITEM_TYPES,
    PLAYLISTS,
    SAVED_ITEMS,
    TRACK_LINKS,
    Library,
    Loaded,
    SavedItem,
    parse_playlists,
    parse_saved_items,
    parse_track_links,
)
from spotify_to_plex_mqtt.core.plan import desired_state
from spotify_to_plex_mqtt.core.problems import FileProblem
from spotify_to_plex_mqtt.core.reconcile import reconcile
from spotify_to_plex_mqtt.inputs.library_files import read_json
from spotify_to_plex_mqtt.settings.broker_url import BrokerUrl, BrokerUrlError, parse_broker_url
from spotify_to_plex_mqtt.settings.config import Settings, load_settings
from spotify_to_plex_mqtt.settings.values import ConfigError

T = TypeVar("T")
EXAMPLES: Counter[str] = Counter()
PASSWORD = "Pw-Distinct-7f3a91"
MQTT_TOPIC_LIMIT = 65535


def budget(count: int) -> settings:
    return settings(max_examples=scaled(count), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def caught(kind: type[Exception], call: Callable[[], T]) -> T | Exception:
    """What `call` returned, or the `kind` exception it raised (anything else propagates)."""
    try:
        return call()
    except kind as exc:
        return exc


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rel-props-") as name:
        yield Path(name)


# -- loaders ----------------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["type", "id", "title", "uri", "image", "label",
                                       "data", "plex", "spotify_id", "plex_id", "x"]),
                      children, max_size=5),
    max_leaves=8,
)
fields = scalars | st.lists(scalars, max_size=2)


def _mangled_json(value: Any, cut: int, noise: bytes) -> bytes:
    raw = json.dumps(value).encode()
    cut = cut % (len(raw) + 1)
    return raw[:cut] + noise + raw[cut:]


arbitrary_bytes = st.one_of(
    st.binary(max_size=400),
    st.builds(_mangled_json, json_values, st.integers(0, 1000), st.binary(max_size=3)),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=200).map(lambda t: t.encode("utf-16")),
)


@budget(2000)
@given(data=arbitrary_bytes, name=st.sampled_from([SAVED_ITEMS, PLAYLISTS, TRACK_LINKS]))
@example(data=b"[" * 200_000, name=SAVED_ITEMS)
@example(data=b"\xef\xbb\xbf[]", name=PLAYLISTS)
@example(data=b"", name=TRACK_LINKS)
def test_read_json_on_arbitrary_bytes(scratch: Path, data: bytes, name: str) -> None:
    EXAMPLES["read_json"] += 1
    path = scratch / name
    path.write_bytes(data)
    problem = caught(FileProblem, lambda: read_json(path))
    if isinstance(problem, FileProblem):
        assert problem.file == name
        assert str(problem).startswith(f"{name}: ")


def _check_loaded(loaded: Loaded[Any]) -> None:
    assert all(isinstance(w, str) for w in loaded.warnings)


@budget(800)
@given(value=json_values | st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from([*ITEM_TYPES, "x"]), "id": fields, "title": fields},
    optional={"uri": fields, "label": fields, "image": fields}), max_size=5))
def test_parse_saved_items_on_arbitrary_json(value: Any) -> None:
    EXAMPLES["parse_saved_items"] += 1
    loaded = caught(FileProblem, lambda: parse_saved_items(value))
    if isinstance(loaded, FileProblem):
        assert loaded.file == SAVED_ITEMS
        return
    assert isinstance(loaded, Loaded)
    _check_loaded(loaded)
    for item in loaded.value:
        assert isinstance(item, SavedItem)
        assert item.type in ITEM_TYPES
        assert all(isinstance(v, str) for v in (item.id, item.title, item.uri, item.label))
        assert item.id.strip()


plex_keys = st.one_of(fields, st.integers(-5, 10**12), st.from_regex(
    r"\A(/library/metadata/)?[0-9]{1,9}(/children)?/?\Z"))


@budget(800)
@given(value=json_values | st.fixed_dictionaries({"data": st.lists(st.fixed_dictionaries(
    {"id": fields}, optional={"plex": plex_keys}), max_size=6)}))
def test_parse_playlists_on_arbitrary_json(value: Any) -> None:
    EXAMPLES["parse_playlists"] += 1
    loaded = caught(FileProblem, lambda: parse_playlists(value))
    if isinstance(loaded, FileProblem):
        assert loaded.file == PLAYLISTS
        return
    assert isinstance(loaded, Loaded)
    _check_loaded(loaded)
    assert all(isinstance(k, str) and re.fullmatch(r"[0-9]+", v)
               for k, v in loaded.value.items())


@budget(800)
@given(value=json_values | st.lists(st.fixed_dictionaries(
    {"spotify_id": fields},
    optional={"plex_id": plex_keys | st.lists(plex_keys, max_size=3)}), max_size=6))
def test_parse_track_links_on_arbitrary_json(value: Any) -> None:
    EXAMPLES["parse_track_links"] += 1
    loaded = caught(FileProblem, lambda: parse_track_links(value))
    if isinstance(loaded, FileProblem):
        assert loaded.file == TRACK_LINKS
        return
    assert isinstance(loaded, Loaded)
    _check_loaded(loaded)
    assert all(isinstance(k, str) and re.fullmatch(r"[0-9]+", v)
               for k, v in loaded.value.items())


# -- slugs and topics -----------------------------------------------------------------------------

base62 = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                 min_size=1, max_size=22)
any_id = st.one_of(base62, st.text(min_size=1, max_size=40).filter(str.strip),
                   base62.map(lambda s: f"liked-{s}"),
                   st.text(max_size=20).map(lambda s: f"plex://album/{s}"))


@st.composite
def libraries(draw: st.DrawFn) -> Library:
    ids = draw(st.lists(any_id, max_size=20))
    # Case variants of some ids: they fold to the same plain slug.
    ids += [i.swapcase() for i in ids if draw(st.booleans())]
    ids += [i.upper() + "_" for i in ids[:3] if draw(st.booleans())]
    odd_label, odd_title, odd_uri = draw(st.tuples(st.text(max_size=30), st.text(max_size=60),
                                                   st.text(max_size=30)))
    labels = ("Jazz", "Kinder 🎈", " ", "", odd_label, "Rock")
    items, playlists, links = [], {}, {}
    for ident, n in zip(ids, draw(st.lists(st.integers(0, 2**60), min_size=len(ids),
                                           max_size=len(ids))), strict=True):
        kind = ITEM_TYPES[n % 3]
        key = str(n // 3 % 10**9)
        uri = ""
        if kind == "spotify-playlist":
            playlists[ident] = key
        elif kind == "spotify-album":
            links[ident] = key
        else:
            uri = (f"/library/metadata/{key}/children", f"/playlists/{key}/items",
                   f"/library/metadata/{key}", odd_uri)[n // 7 % 4]
        title = (odd_title, f"Title {n}", ident)[n // 11 % 3]
        items.append(SavedItem(type=kind, id=ident, title=title or ident, uri=uri,
                               label=labels[n // 13 % len(labels)].strip()))
    return Library(tuple(items), playlists, links)


prefixes = st.from_regex(r"\A[a-zA-Z0-9_ä][a-zA-Z0-9_/ \-ü]{0,30}[a-zA-Z0-9_\-]\Z").filter(
    lambda p: "//" not in p)


def _valid_topic(topic: str) -> bool:
    size = len(topic.encode())
    return 0 < size <= MQTT_TOPIC_LIMIT and not any(c in topic for c in "+#\x00")


@budget(1200)
@given(library=libraries(), topic_prefix=st.just("spotify-to-plex") | prefixes,
       discovery_prefix=st.just("homeassistant") | prefixes)
def test_every_rendered_topic_is_valid_and_unique(library: Library, topic_prefix: str,
                                                  discovery_prefix: str) -> None:
    EXAMPLES["render"] += 1
    topics = Topics(topic_prefix, discovery_prefix)
    resolution = resolve(library)
    desired = desired_state(topics, resolution, {}, True, bridge=True)
    config_re = re.compile(rf"\A{re.escape(discovery_prefix)}/(sensor|button|binary_sensor)/"
                           r"[A-Za-z0-9_-]+/config\Z")
    configs = {t: json.loads(p) for t, p in desired.items() if t.endswith("/config")
               and t.startswith(f"{discovery_prefix}/")}
    assert all(_valid_topic(t) for t in desired)
    assert all(config_re.match(t) for t in configs), sorted(configs)
    entities = resolution.entities
    assert len(configs) == len(entities) + 1 + 4  # items, categories, the bridge's four
    for key in ("unique_id", "default_entity_id", "object_id"):
        values = [c[key] for c in configs.values()]
        assert len(set(values)) == len(values), key
    states = {topics.item_state(e.slug) for e in entities}
    assert len(states) == len(entities)
    assert all(c.get("state_topic", topics.bridge_state) in desired for c in configs.values())
    for topic, payload in desired.items():
        json.loads(payload)
        # The service must know its own messages, or it could never clear them.
        assert topics.is_ours(topic, payload), topic


# -- broker URLs ----------------------------------------------------------------------------------

url_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


@st.composite
def broker_urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["mqtt", "mqtts", "ws", "wss", "tcp", "ssl", "http", "MQTT",
                                   ""]) | url_text)
    user = draw(st.sampled_from(["ha", "", "user name"]) | url_text)
    secret = draw(url_text) + PASSWORD + draw(url_text)
    if draw(st.booleans()):
        secret = quote(secret, safe="")
    host = draw(st.sampled_from(["broker.lan", "127.0.0.1", "[::1]", "", "bad host"])
                | url_text)
    port = draw(st.sampled_from(["", ":1883", ":0", ":65536", ":x", ":-1"]) | url_text)
    path = draw(st.sampled_from(["", "/", "/mqtt", "/a?b=c", "#frag"]) | url_text)
    return f"{scheme}://{user}:{secret}@{host}{port}{path}"


def _leaks(text: str) -> bool:
    return PASSWORD.lower() in text.lower() or quote(PASSWORD).lower() in text.lower()


@budget(1500)
@given(raw=broker_urls())
@example(raw=f"mqtt://u:{PASSWORD}/x@host:1883")
@example(raw=f"mqtt://u:{PASSWORD}@host:99999")
@example(raw=f"mqtt://u:{PASSWORD}@[::1:1883")
@example(raw=f"mqtt://u:{PASSWORD}@ho st:1883")
def test_broker_url_never_leaks_its_password(raw: str) -> None:
    EXAMPLES["broker_url"] += 1
    url = caught(BrokerUrlError, lambda: parse_broker_url(raw))
    if isinstance(url, BrokerUrlError):
        assert not _leaks(str(url)), str(url)
        return
    assert isinstance(url, BrokerUrl)
    assert not _leaks(url.display)
    assert not _leaks(repr(url))


@budget(1000)
@given(raw=st.text(max_size=60))
def test_broker_url_raises_only_broker_url_error(raw: str) -> None:
    EXAMPLES["broker_url_text"] += 1
    with contextlib.suppress(BrokerUrlError):
        parse_broker_url(raw)


@budget(400)
@given(raw=broker_urls(), user=st.sampled_from(["", "ha"]))
def test_config_errors_never_carry_the_password(raw: str, user: str) -> None:
    EXAMPLES["config"] += 1
    env = {"MQTT_BROKER_URL": raw, "MQTT_PASSWORD": PASSWORD, "MQTT_USERNAME": user}
    loaded = caught(ConfigError, lambda: load_settings(["--settings-dir", "/nonexistent"], env))
    if isinstance(loaded, ConfigError):
        assert not _leaks(str(loaded)), str(loaded)
        return
    assert isinstance(loaded, Settings)
    assert not _leaks(repr(loaded))
    assert not _leaks(json.dumps(loaded.redacted()))


# -- reconciliation ------------------------------------------------------------------------------

topic_pool = st.sampled_from([f"homeassistant/sensor/s_item_{i}/config" for i in range(8)]
                             + [f"s/items/{i}" for i in range(8)] + ["s/categories", "s/bridge"])
retained_maps = st.dictionaries(topic_pool, st.binary(min_size=1, max_size=8), max_size=18)


@budget(2000)
@given(desired=retained_maps, actual=retained_maps, allow=st.booleans())
def test_reconcile_reaches_desired_and_never_removes_when_told(
        desired: dict[str, bytes], actual: dict[str, bytes], allow: bool) -> None:
    EXAMPLES["reconcile"] += 1
    plan = reconcile(desired, actual, allow_removal=allow)
    after = apply_plan(actual, plan)
    if allow:
        assert after == desired
        assert plan.withheld == ()
    else:
        assert set(actual) <= set(after)
        assert {t: after[t] for t in desired} == desired
        assert set(plan.withheld) == set(actual) - set(desired)
        assert plan.clear == ()
    assert len(reconcile(after, after, allow_removal=allow)) == 0  # unchanged: nothing to do
    messages = plan.messages
    cleared = [t for t, p in messages if not p]
    assert [t for t, _ in messages[: len(cleared)]] == cleared  # clears first
    assert cleared == sorted(cleared, key=lambda t: (not t.endswith("/config"), t))
    published = [t for t, p in messages if p]
    assert published == sorted(published, key=lambda t: (t.endswith("/config"), t))


def test_examples_budget() -> None:
    """The figures for docs/reliability.md; the total only counts when the module ran whole."""
    total = sum(EXAMPLES.values())
    print(f"\n[reliability] property examples: {total} ({dict(EXAMPLES)})")
    if len(EXAMPLES) == 9:
        assert total >= scaled(10_000)
