"""Pure tests of `broker_url.parse_broker_url` and `BrokerUrl.display`."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from spotify_to_plex_mqtt.secret import Secret
from spotify_to_plex_mqtt.settings.broker_url import (
    CREDENTIALS_HINT,
    BrokerUrl,
    BrokerUrlError,
    parse_broker_url,
)

PASSWORD = "Pw-9f3k!zz"  # noqa: S105 - a distinctive test value


@pytest.mark.parametrize(
    ("scheme", "transport", "tls", "port"),
    [
        ("mqtt", "tcp", False, 1883),
        ("tcp", "tcp", False, 1883),
        ("mqtts", "tcp", True, 8883),
        ("ssl", "tcp", True, 8883),
        ("tls", "tcp", True, 8883),
        ("ws", "websockets", False, 80),
        ("wss", "websockets", True, 443),
        ("MQTT", "tcp", False, 1883),
        ("WSS", "websockets", True, 443),
    ],
)
def test_schemes_and_default_ports(scheme: str, transport: str, tls: bool, port: int) -> None:
    url = parse_broker_url(f"{scheme}://broker.local")
    assert url.host == "broker.local"
    assert url.transport == transport
    assert url.tls is tls
    assert url.port == port
    assert url.username is None
    assert url.password is None


@pytest.mark.parametrize("scheme", ["mqtt", "mqtts", "tcp", "ssl", "ws", "wss"])
def test_explicit_port_wins(scheme: str) -> None:
    assert parse_broker_url(f"{scheme}://broker.local:12345").port == 12345


def test_tcp_has_no_path() -> None:
    assert parse_broker_url("mqtt://broker.local:1883").path is None
    assert parse_broker_url("mqtt://broker.local:1883/").path is None


def test_tcp_with_path_is_rejected() -> None:
    with pytest.raises(BrokerUrlError, match="path"):
        parse_broker_url("mqtts://broker.local/mqtt")


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("ws://broker.local:9001/mqtt", "/mqtt"),
        ("wss://broker.local/mqtt?token=abc&x=1", "/mqtt?token=abc&x=1"),
        ("ws://broker.local", "/"),
        ("ws://broker.local/", "/"),
        ("ws://broker.local?x=1", "/?x=1"),
        ("wss://broker.local/a/b/c", "/a/b/c"),
    ],
)
def test_websocket_path_and_query_kept(raw: str, path: str) -> None:
    url = parse_broker_url(raw)
    assert url.path == path
    assert url.display.endswith(path)


def test_percent_encoded_credentials_are_decoded() -> None:
    url = parse_broker_url("mqtt://us%40er%3Ax:p%40ss%3Aw%2Fo%23rd%25@broker.local")
    assert url.username == "us@er:x"
    assert url.password == Secret("p@ss:w/o#rd%")
    assert url.host == "broker.local"


def test_plain_credentials() -> None:
    url = parse_broker_url(f"mqtts://ha:{PASSWORD}@broker.local:8884")
    assert url.username == "ha"
    assert url.password is not None
    assert url.password.reveal() == PASSWORD
    assert url.port == 8884
    assert PASSWORD not in url.display
    assert PASSWORD not in repr(url)
    assert "ha@" not in url.display


def test_empty_password_is_none() -> None:
    url = parse_broker_url("mqtt://ha:@broker.local")
    assert url.username == "ha"
    assert url.password is None


@pytest.mark.parametrize(
    ("raw", "host", "port", "display"),
    [
        ("mqtt://[::1]:1884", "::1", 1884, "mqtt://[::1]:1884"),
        ("mqtts://[2001:db8::5]", "2001:db8::5", 8883, "mqtts://[2001:db8::5]:8883"),
        ("ws://u:p@[fe80::1]:9001/mqtt", "fe80::1", 9001, "ws://[fe80::1]:9001/mqtt"),
    ],
)
def test_ipv6_hosts(raw: str, host: str, port: int, display: str) -> None:
    url = parse_broker_url(raw)
    assert url.host == host
    assert url.port == port
    assert url.display == display


@pytest.mark.parametrize(
    ("raw", "display"),
    [
        ("mqtt://broker.local", "mqtt://broker.local:1883"),
        ("tcp://broker.local:1", "mqtt://broker.local:1"),
        ("ssl://broker.local", "mqtts://broker.local:8883"),
        (f"mqtts://ha:{PASSWORD}@Broker.Local:8883", "mqtts://broker.local:8883"),
        (f"wss://ha:{PASSWORD}@broker.local/mqtt", "wss://broker.local:443/mqtt"),
        (f"ws://ha:{PASSWORD}@10.0.0.2:9001/", "ws://10.0.0.2:9001/"),
    ],
)
def test_display_has_no_credentials(raw: str, display: str) -> None:
    url = parse_broker_url(raw)
    assert url.display == display
    assert "@" not in url.display
    assert PASSWORD not in url.display


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_broker_url("  mqtt://broker.local:1883\n").host == "broker.local"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("broker.local:1883", "scheme"),
        ("http://broker.local", "scheme"),
        ("mqtt://", "host"),
        ("mqtt://:1883", "host"),
        ("mqtt://broker.local:0", "port"),
        ("mqtt://broker.local:65536", "port"),
        ("mqtt://broker.local:99999", "port"),
        ("mqtt://broker.local:abc", "port"),
        ("mqtt://[::1", "malformed"),
    ],
)
def test_bad_urls(raw: str, fragment: str) -> None:
    with pytest.raises(BrokerUrlError, match=fragment):
        parse_broker_url(raw)


@pytest.mark.parametrize(
    "raw",
    [
        f"http://ha:{PASSWORD}@broker.local",
        f"mqtt://ha:{PASSWORD}@broker.local:99999",
        f"mqtt://ha:{PASSWORD}@broker.local:nope",
        f"mqtt://ha:{PASSWORD}@",
        f"mqtt://ha:{PASSWORD}@[::1",
        f"mqtt://ha:{PASSWORD}@broker.local/x",
        f"ha:{PASSWORD}@broker.local",
        f"mqtt://ha:{PASSWORD}#x@broker.local",
    ],
)
def test_error_messages_never_contain_the_password(raw: str) -> None:
    with pytest.raises(BrokerUrlError) as info:
        parse_broker_url(raw)
    assert PASSWORD not in str(info.value)
    # Not chained to urllib's ValueError, whose message can quote the netloc.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


@pytest.mark.parametrize("raw", [
    f"mqtt://ha:{PASSWORD}#1@broker.local:1883",  # "#" starts a fragment
    f"mqtt://ha:{PASSWORD}?1@broker.local:1883",  # "?" starts a query
    f"mqtt://ha:1/{PASSWORD}@broker.local:1883",  # "/" starts a path
    f"mqtt://ha:p w#{PASSWORD}@broker.local",     # a space and a "#"
    f"mqtts://ha:{PASSWORD}#@broker.local",
    f"mqtt://ha:@{PASSWORD}#@broker.local",       # an "@" before the "#" as well (found by
                                                  # hypothesis: the password became the host)
    f"mqtt://ha:[{PASSWORD}@broker.local:1883",  # "[" starts an IPv6 address
    f"mqtt://ha:{PASSWORD}]@broker.local",
])
def test_unencoded_characters_in_credentials_say_so(raw: str) -> None:
    # These used to be reported as "its port is not a number", sending the user to the port.
    with pytest.raises(BrokerUrlError) as info:
        parse_broker_url(raw)
    message = str(info.value)
    assert message == CREDENTIALS_HINT
    assert "port" not in message
    assert all(code in message for code in ("%40", "%23", "%20"))
    assert PASSWORD not in message


@pytest.mark.parametrize(("raw", "password"), [
    ("mqtt://ha:p@ss@broker.local:1883", "p@ss"),             # the last "@" ends them
    ("mqtt://me@example.com:pw@broker.local:1883", "pw"),
    ("mqtt://ha:pa ss@broker.local:1883", "pa ss"),
])
def test_unambiguous_unencoded_credentials_still_work(raw: str, password: str) -> None:
    url = parse_broker_url(raw)
    assert url.host == "broker.local"
    assert url.password == Secret(password)


def test_a_bad_port_after_credentials_is_still_the_port() -> None:
    with pytest.raises(BrokerUrlError, match="port is not a number"):
        parse_broker_url(f"mqtt://ha:{PASSWORD}@broker.local:12ab")


def test_websocket_path_is_not_a_hiding_place_for_a_password() -> None:
    # A password with an unencoded "/" ("1234/Pw-9f3k!zz") turns its tail into the websocket
    # path; `display` then prints it. A path holding "@" is almost surely such a mistake.
    secret = f"1234/{PASSWORD}"
    try:
        shown = parse_broker_url(f"ws://ha:{secret}@broker.local:9001/mqtt").display
    except BrokerUrlError as exc:
        shown = str(exc)
    assert PASSWORD not in shown


# --- property ------------------------------------------------------------------------------

SCHEMES = ["mqtt", "mqtts", "tcp", "ssl", "ws", "wss"]
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(label, min_size=1, max_size=4).map(".".join).filter(
    lambda h: not h.replace(".", "").isdigit())
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.ip_addresses(v=6).map(str)
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.integers(1, 65535)
credentials = st.text(min_size=1, max_size=30)


def _build(scheme: str, host: str, port: int | None, *, user: str | None = None,
           password: str | None = None, path: str = "") -> str:
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    if user is not None:
        auth = quote(user, safe="")
        if password is not None:
            auth = f"{auth}:{quote(password, safe='')}"
        netloc = f"{auth}@{netloc}"
    return f"{scheme}://{netloc}{path}"


@settings(max_examples=300)
@given(scheme=st.sampled_from(SCHEMES), host=hosts, port=st.none() | ports,
       user=credentials, password=credentials,
       path=st.sampled_from(["", "/mqtt", "/a/b?c=d"]))
def test_round_trip_and_no_password_in_display(*, scheme: str, host: str, port: int | None,
                                               user: str, password: str, path: str) -> None:
    is_ws = scheme.startswith("ws")
    path = path if is_ws else ""
    plain = parse_broker_url(_build(scheme, host, port, path=path))
    assume(password not in plain.display)
    url = parse_broker_url(_build(scheme, host, port, user=user, password=password, path=path))
    assert url.host == host.lower()
    if port is not None:
        assert url.port == port
    assert url.username == user
    assert url.password == Secret(password)
    assert url.tls == (scheme in ("mqtts", "ssl", "wss"))
    assert url.transport == ("websockets" if is_ws else "tcp")
    assert url.path == ((path or "/") if is_ws else None)
    # Credentials change nothing in the printable form.
    assert url.display == plain.display
    assert password not in url.display
    assert repr(url) == repr(replace(url, password=None)).replace(
        "password=None", "password=Secret('********')")
    assert isinstance(parse_broker_url(url.display), BrokerUrl)


FIXED_WORDING = (
    CREDENTIALS_HINT,
    "its port is not a number from 1 to 65535",
    "a path is only meaningful for ws:// and wss:// URLs",
    "it is malformed",
    "it has no host name",
)


@settings(max_examples=300)
@given(
    host=hosts,
    user=credentials,
    password=credentials,
    mistake=st.sampled_from([
        ("http", ""), ("ftp", ""), ("mqtt", ":0"), ("mqtt", ":65536"), ("mqtt", ":99999"),
        ("mqtt", ":12ab"), ("mqtt", ":-1"), ("mqtts", "/path"), ("mqtt", "::1883"),
    ]),
    encode=st.booleans(),
)
def test_error_messages_never_contain_generated_passwords(host: str, user: str, password: str,
                                                          mistake: tuple[str, str],
                                                          encode: bool) -> None:
    scheme, suffix = mistake
    netloc = f"[{host}]" if ":" in host else host
    pw = quote(password, safe="") if encode else password
    raw = f"{scheme}://{quote(user, safe='')}:{pw}@{netloc}{suffix}"
    try:
        parse_broker_url(raw)
    except BrokerUrlError as exc:
        message = str(exc)
        # The only echoed part is the scheme; a password that happens to be a substring of
        # the fixed wording cannot be told apart from it.
        scheme_wording = f"its scheme {scheme!r} is not one of mqtt, mqtts, ws, wss"
        assume(not any(password in fixed for fixed in (*FIXED_WORDING, scheme_wording)))
        assert password not in message
    else:
        # Only an unencoded password can turn a mistake into something parseable; it must
        # then at least not be shown.
        assert not encode
        assert password not in parse_broker_url(raw).display or password in netloc
