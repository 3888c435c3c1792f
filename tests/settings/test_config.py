"""Pure tests of `config.load_settings` and of `cli.main` on configuration errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from mosquitto import _make_certificates
from spotify_to_plex_mqtt.cli import main
from spotify_to_plex_mqtt.secret import MASK
from spotify_to_plex_mqtt.settings.config import Settings, load_settings
from spotify_to_plex_mqtt.settings.flags import build_parser
from spotify_to_plex_mqtt.settings.values import ConfigError

PASSWORD = "Pw-9f3k!zz"  # noqa: S105 - a distinctive test value
URL = "mqtt://broker.local:1883"

ENV_VARS = (
    "MQTT_BROKER_URL", "MQTT_USERNAME", "MQTT_PASSWORD", "MQTT_TOPIC_PREFIX",
    "MQTT_DISCOVERY_PREFIX", "MQTT_CA_FILE", "MQTT_TLS_INSECURE", "MQTT_DRY_RUN", "DEBUG",
    "SETTINGS_DIR", "STORAGE_DIR", "ONE_SHOT", "SYNC_INTERVAL", "DISABLE_WATCH", "WATCH_POLL",
    "RETRY_COUNT", "RETRY_DELAY", "DEBOUNCE", "MIN_SYNC_GAP",
)


def load(argv: list[str] | None = None, /, **env: str) -> Settings:
    return load_settings(argv or [], env)


def config_error(argv: list[str] | None = None, /, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(argv or [], env)
    return info.value


# --- basics -------------------------------------------------------------------------------


def test_defaults_with_only_a_broker_url() -> None:
    settings = load(MQTT_BROKER_URL=URL)
    assert settings.command == "run"
    assert settings.settings_dir == Path("settings")
    assert settings.mqtt.url is not None
    assert settings.mqtt.url.host == "broker.local"
    assert settings.mqtt.url.port == 1883
    assert settings.mqtt.username is None
    assert settings.mqtt.password is None
    assert settings.mqtt.topic_prefix == "spotify-to-plex"
    assert settings.mqtt.discovery_prefix == "homeassistant"
    assert (settings.one_shot, settings.dry_run, settings.debug) == (False, False, False)
    assert settings.interval == 300.0
    assert settings.watch is True
    assert settings.poll is False
    assert settings.retry_count == 3
    assert settings.secrets == ()


def test_env_values_are_used() -> None:
    settings = load(
        MQTT_BROKER_URL="mqtts://broker.local",
        MQTT_USERNAME="ha",
        MQTT_PASSWORD=PASSWORD,
        MQTT_TOPIC_PREFIX="my/s2p",
        MQTT_DISCOVERY_PREFIX="ha-disc",
        ONE_SHOT="yes",
        SYNC_INTERVAL="60",
        DISABLE_WATCH="1",
        WATCH_POLL="on",
        RETRY_COUNT="5",
        RETRY_DELAY="7.5",
        DEBOUNCE="0.5",
        MIN_SYNC_GAP="3",
    )
    assert settings.mqtt.url is not None
    assert settings.mqtt.url.tls is True
    assert settings.mqtt.url.port == 8883
    assert settings.mqtt.username == "ha"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.reveal() == PASSWORD
    assert settings.mqtt.topic_prefix == "my/s2p"
    assert settings.mqtt.discovery_prefix == "ha-disc"
    assert settings.one_shot is True
    assert settings.interval == 60.0
    assert settings.watch is False
    assert settings.poll is True
    assert settings.retry_count == 5
    assert settings.retry_delay == 7.5
    assert settings.debounce == 0.5
    assert settings.min_gap == 3.0
    assert settings.secrets == (PASSWORD,)


@pytest.mark.parametrize(
    ("argv", "env", "attribute", "expected"),
    [
        (["--interval", "10"], {"SYNC_INTERVAL": "99"}, "interval", 10.0),
        (["--retry-count", "1"], {"RETRY_COUNT": "9"}, "retry_count", 1),
        (["--retry-delay", "2"], {"RETRY_DELAY": "9"}, "retry_delay", 2.0),
        (["--debounce", "0"], {"DEBOUNCE": "9"}, "debounce", 0.0),
        (["--min-gap", "4"], {"MIN_SYNC_GAP": "9"}, "min_gap", 4.0),
        (["--one-shot"], {"ONE_SHOT": "false"}, "one_shot", True),
        (["--no-continuous"], {"ONE_SHOT": "0"}, "one_shot", True),
        (["--no-watch"], {"DISABLE_WATCH": "false"}, "watch", False),
        (["--poll"], {"WATCH_POLL": "no"}, "poll", True),
        (["--dry-run"], {"MQTT_DRY_RUN": "false"}, "dry_run", True),
        (["--debug"], {"DEBUG": "express"}, "debug", True),
    ],
)
def test_flag_beats_env(argv: list[str], env: dict[str, str], attribute: str,
                        expected: object) -> None:
    settings = load_settings(argv, {"MQTT_BROKER_URL": URL, **env})
    assert getattr(settings, attribute) == expected


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, "settings"),
        ([], {"STORAGE_DIR": "/storage"}, "/storage"),
        ([], {"SETTINGS_DIR": "/settings-env", "STORAGE_DIR": "/storage"}, "/settings-env"),
        ([], {"SETTINGS_DIR": "", "STORAGE_DIR": "/storage"}, "/storage"),
        (["--settings-dir", "/flag"], {"SETTINGS_DIR": "/settings-env",
                                       "STORAGE_DIR": "/storage"}, "/flag"),
        (["--settings-dir", "/flag"], {"STORAGE_DIR": "/storage"}, "/flag"),
    ],
)
def test_settings_dir_precedence(argv: list[str], env: dict[str, str], expected: str) -> None:
    settings = load_settings(argv, {"MQTT_BROKER_URL": URL, **env})
    assert settings.settings_dir == Path(expected)


def test_settings_dir_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load(["--settings-dir", "~/s2p"], MQTT_BROKER_URL=URL)
    assert settings.settings_dir == tmp_path / "s2p"


# --- broker URL required or not ------------------------------------------------------------


def test_broker_url_required_for_normal_run() -> None:
    error = config_error()
    assert error.setting == "MQTT_BROKER_URL"
    assert "MQTT_BROKER_URL" in str(error)
    assert "mqtt://" in str(error)


def test_blank_broker_url_counts_as_missing() -> None:
    assert config_error(MQTT_BROKER_URL="   ").setting == "MQTT_BROKER_URL"


def test_broker_url_required_for_one_shot() -> None:
    assert config_error(["--one-shot"]).setting == "MQTT_BROKER_URL"


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--dry-run"], {}),
        ([], {"MQTT_DRY_RUN": "true"}),
        ([], {"MQTT_DRY_RUN": "TRUE"}),
        (["demo"], {}),
        (["demo", "--settings-dir", "x"], {}),
    ],
)
def test_broker_url_not_required_for_dry_run_or_demo(argv: list[str],
                                                     env: dict[str, str]) -> None:
    settings = load_settings(argv, env)
    assert settings.mqtt.url is None


def test_mqtt_dry_run_env() -> None:
    assert load(MQTT_DRY_RUN="true").dry_run is True
    assert load(MQTT_DRY_RUN="false", MQTT_BROKER_URL=URL).dry_run is False


def test_demo_command() -> None:
    assert load(["demo"]).command == "demo"


def test_dry_run_still_validates_a_given_url() -> None:
    error = config_error(["--dry-run"], MQTT_BROKER_URL="http://broker")
    assert error.setting == "MQTT_BROKER_URL"


# --- credentials ---------------------------------------------------------------------------


def test_username_without_password() -> None:
    error = config_error(MQTT_BROKER_URL=URL, MQTT_USERNAME="ha")
    assert error.setting == "MQTT_PASSWORD"
    assert "MQTT_PASSWORD" in str(error)
    assert "MQTT_USERNAME" in str(error)


def test_password_without_username() -> None:
    error = config_error(MQTT_BROKER_URL=URL, MQTT_PASSWORD=PASSWORD)
    assert error.setting == "MQTT_USERNAME"
    assert "MQTT_USERNAME" in str(error)
    assert PASSWORD not in str(error)


def test_url_username_without_password() -> None:
    error = config_error(MQTT_BROKER_URL="mqtt://ha@broker.local")
    assert error.setting == "MQTT_PASSWORD"


def test_credentials_from_url() -> None:
    settings = load(MQTT_BROKER_URL=f"mqtt://ha:{PASSWORD}@broker.local")
    assert settings.mqtt.username == "ha"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.reveal() == PASSWORD
    assert settings.secrets == (PASSWORD,)


def test_env_credentials_beat_url_credentials() -> None:
    settings = load(MQTT_BROKER_URL="mqtt://old:oldpass@broker.local",
                    MQTT_USERNAME="new", MQTT_PASSWORD=PASSWORD)
    assert settings.mqtt.username == "new"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.reveal() == PASSWORD


# --- bad URLs ------------------------------------------------------------------------------

BAD_URLS = [
    f"http://ha:{PASSWORD}@broker.local:1883",
    f"https://ha:{PASSWORD}@broker.local",
    f"mqtt://ha:{PASSWORD}@",
    f"mqtt://ha:{PASSWORD}@:1883",
    f"mqtt://ha:{PASSWORD}@broker.local:99999",
    f"mqtt://ha:{PASSWORD}@broker.local:0",
    f"mqtt://ha:{PASSWORD}@broker.local:port",
    f"mqtt://ha:{PASSWORD}@broker.local:18x3",
    f"mqtt://ha:{PASSWORD}@broker.local:1883:1",
    f"mqtt://ha:{PASSWORD}@[::1",
    f"mqtt://ha:{PASSWORD}@broker.local/some/path",
    f"ha:{PASSWORD}@broker.local:1883",
    f"mqtt:/ha:{PASSWORD}@broker.local",
    f"{PASSWORD}://broker.local",
    f"mqtt://ha:{PASSWORD}#frag@broker.local",
    f"mqtt://ha:{PASSWORD}?x@broker.local",
]


@pytest.mark.parametrize("raw", BAD_URLS)
def test_bad_url_is_a_config_error_without_the_password(raw: str) -> None:
    error = config_error(MQTT_BROKER_URL=raw)
    message = str(error)
    assert error.setting == "MQTT_BROKER_URL"
    assert message.startswith("MQTT_BROKER_URL ")
    assert "Example" in message
    assert "mqtt://192.168.1.10:1883" in message
    assert PASSWORD not in message
    assert PASSWORD not in repr(error)
    assert error.__cause__ is None
    assert error.__suppress_context__ is True


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("http://broker.local", "'http'"),
        ("mqtt://broker.local:99999", "port"),
        ("mqtt://broker.local:abc", "port"),
        ("mqtt://:1883", "host"),
        ("broker.local:1883", "scheme"),
    ],
)
def test_bad_url_message_says_why(raw: str, fragment: str) -> None:
    assert fragment in str(config_error(MQTT_BROKER_URL=raw))


# --- DEBUG, booleans, numbers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mqtt", True),
        ("*", True),
        ("mqtt*", True),
        ("MQTT", True),
        ("express,mqtt", True),
        ("express mqtt:*", True),
        ("express", False),
        ("", False),
        ("express:*", False),
    ],
)
def test_debug_env(value: str, expected: bool) -> None:
    assert load(MQTT_BROKER_URL=URL, DEBUG=value).debug is expected


def test_debug_flag() -> None:
    assert load(["-d"], MQTT_BROKER_URL=URL).debug is True


@pytest.mark.parametrize("name", ["MQTT_DRY_RUN", "ONE_SHOT", "DISABLE_WATCH", "WATCH_POLL",
                                  "MQTT_TLS_INSECURE"])
@pytest.mark.parametrize("value", ["maybe", "2", "tru", "y e s"])
def test_bad_boolean(name: str, value: str) -> None:
    error = config_error(**{"MQTT_BROKER_URL": URL, name: value})
    assert error.setting == name
    assert name in str(error)
    assert repr(value) in str(error)
    assert f"{name}=true" in str(error)


@pytest.mark.parametrize("value", ["1", "true", "True", " yes ", "ON"])
def test_true_booleans(value: str) -> None:
    assert load(MQTT_BROKER_URL=URL, ONE_SHOT=value).one_shot is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_false_booleans(value: str) -> None:
    assert load(MQTT_BROKER_URL=URL, ONE_SHOT=value).one_shot is False


@pytest.mark.parametrize("name", ["SYNC_INTERVAL", "RETRY_COUNT", "RETRY_DELAY", "DEBOUNCE",
                                  "MIN_SYNC_GAP"])
@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "-inf", "Infinity"])
def test_bad_numbers(name: str, value: str) -> None:
    error = config_error(**{"MQTT_BROKER_URL": URL, name: value})
    assert error.setting == name
    assert name in str(error)


@pytest.mark.parametrize("flag", ["--interval", "--retry-delay", "--debounce", "--min-gap",
                                  "--retry-count"])
def test_negative_flags(flag: str) -> None:
    error = config_error([flag, "-1"], MQTT_BROKER_URL=URL)
    assert error.setting == flag


@pytest.mark.parametrize("flag", ["--interval", "--retry-delay", "--debounce", "--min-gap"])
@pytest.mark.parametrize("value", ["nan", "inf", "NaN", "1e999"])
def test_non_finite_flags(flag: str, value: str) -> None:
    # float() accepts these words; a nan interval would make the timer spin.
    error = config_error([flag, value], MQTT_BROKER_URL=URL)
    assert error.setting == flag
    assert "finite" in str(error)


# --- the HTTP API's exposure check -----------------------------------------------------------


@pytest.mark.parametrize("argv", [["--one-shot"], ["--dry-run"], ["--no-continuous"]])
def test_an_exposed_http_host_does_not_stop_modes_that_serve_nothing(argv: list[str]) -> None:
    # One env file often serves the service and an occasional one-shot: neither of these
    # listens, so HTTP_HOST=0.0.0.0 without API_TOKEN is no risk there.
    settings = load(argv, MQTT_BROKER_URL=URL, HTTP_HOST="0.0.0.0")  # noqa: S104
    assert settings.one_shot or settings.dry_run


def test_one_shot_from_the_environment_serves_nothing_either() -> None:
    settings = load(MQTT_BROKER_URL=URL, ONE_SHOT="true", HTTP_HOST="0.0.0.0")  # noqa: S104
    assert settings.one_shot


def test_the_service_still_refuses_an_exposed_http_host_without_a_token() -> None:
    error = config_error(MQTT_BROKER_URL=URL, HTTP_HOST="0.0.0.0")  # noqa: S104
    assert error.setting == "HTTP_HOST"


# --- prefixes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MQTT_TOPIC_PREFIX", "MQTT_DISCOVERY_PREFIX"])
@pytest.mark.parametrize("value", ["a+b", "a/#", "#", "+", "/lead", "trail/", "/", "a/b/",
                                   "nul\x00byte"])
def test_bad_prefixes(name: str, value: str) -> None:
    error = config_error(**{"MQTT_BROKER_URL": URL, name: value})
    assert error.setting == name
    assert name in str(error)


@pytest.mark.parametrize("value", ["s2p", "home/s2p", "my-prefix_2", "a"])
def test_good_prefixes(value: str) -> None:
    settings = load(MQTT_BROKER_URL=URL, MQTT_TOPIC_PREFIX=value, MQTT_DISCOVERY_PREFIX=value)
    assert settings.mqtt.topic_prefix == value
    assert settings.mqtt.discovery_prefix == value


def test_blank_prefix_means_default() -> None:
    settings = load(MQTT_BROKER_URL=URL, MQTT_TOPIC_PREFIX="  ")
    assert settings.mqtt.topic_prefix == "spotify-to-plex"


# --- CA file -------------------------------------------------------------------------------


def test_ca_file_must_exist(tmp_path: Path) -> None:
    error = config_error(MQTT_BROKER_URL=URL, MQTT_CA_FILE=str(tmp_path / "missing.pem"))
    assert error.setting == "MQTT_CA_FILE"
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert "PEM" in str(config_error(MQTT_BROKER_URL=URL, MQTT_CA_FILE=str(ca)))
    ca, _cert, _key = _make_certificates(tmp_path / "tls")
    assert load(MQTT_BROKER_URL=URL, MQTT_CA_FILE=str(ca)).mqtt.ca_file == ca


# --- secrets stay secret -------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"MQTT_BROKER_URL": f"mqtts://ha:{PASSWORD}@broker.local:8883"},
        {"MQTT_BROKER_URL": URL, "MQTT_USERNAME": "ha", "MQTT_PASSWORD": PASSWORD},
        {"MQTT_BROKER_URL": "wss://ha:Pw-9f3k%21zz@broker.local/mqtt"},
    ],
)
def test_repr_and_redacted_never_contain_the_password(env: Mapping[str, str]) -> None:
    settings = load_settings([], env)
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.reveal() == PASSWORD
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)
    assert PASSWORD not in repr(settings.mqtt)
    assert PASSWORD not in str(settings.redacted())
    redacted = settings.redacted()
    assert redacted["mqtt"]["password"] == MASK
    assert redacted["mqtt"]["username"] == "ha"
    assert "broker.local" in redacted["mqtt"]["broker"]


def test_other_tokens_are_known_secrets_but_never_shown() -> None:
    env = {"MQTT_BROKER_URL": f"mqtt://ha:{PASSWORD}@broker.local",
           "PLEX_TOKEN": "plex-Tk-77q", "API_TOKEN": "api-Tk-88r"}
    settings = load_settings([], env)
    assert set(settings.secrets) == {PASSWORD, "plex-Tk-77q", "api-Tk-88r"}
    for text in (repr(settings), str(settings.redacted())):
        assert "plex-Tk-77q" not in text
        assert "api-Tk-88r" not in text
        assert PASSWORD not in text


def test_redacted_without_password() -> None:
    assert load(MQTT_BROKER_URL=URL).redacted()["mqtt"]["password"] is None


# --- cli.main ------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _assert_one_paragraph(err: str) -> None:
    assert err.strip()
    assert "Traceback" not in err
    assert "\n\n" not in err.strip()
    assert err.startswith("spotify-to-plex-mqtt: configuration error: ")


def test_main_missing_url(clean_env: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    _assert_one_paragraph(captured.err)
    assert "MQTT_BROKER_URL" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("raw", BAD_URLS[:6])
def test_main_bad_url_hides_password(raw: str, clean_env: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("MQTT_BROKER_URL", raw)
    assert main([]) == 2
    captured = capsys.readouterr()
    _assert_one_paragraph(captured.err)
    assert "MQTT_BROKER_URL" in captured.err
    assert PASSWORD not in captured.err
    assert PASSWORD not in captured.out


def test_main_bad_boolean(clean_env: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("MQTT_DRY_RUN", "perhaps")
    assert main(["--settings-dir", "x"]) == 2
    captured = capsys.readouterr()
    _assert_one_paragraph(captured.err)
    assert "MQTT_DRY_RUN" in captured.err


def test_main_username_without_password(clean_env: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("MQTT_BROKER_URL", URL)
    clean_env.setenv("MQTT_USERNAME", "ha")
    assert main([]) == 2
    _assert_one_paragraph(capsys.readouterr().err)


def test_main_unparseable_flag_exits_2(clean_env: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--interval", "soon"])
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# --- --help -------------------------------------------------------------------------------


def _readme_environment_variables() -> set[str]:
    """The names in the environment column of the README's configuration table."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    names: set[str] = set()
    for line in readme.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and line.startswith("|"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)", cells[2]))
    return names


def test_help_names_every_environment_variable_of_the_readme() -> None:
    names = _readme_environment_variables()
    assert {"MQTT_BROKER_URL", "PLEX_URL", "PLEX_TOKEN", "PLEX_VERIFY_TLS"} <= names
    text = build_parser().format_help()
    assert sorted(n for n in names if n not in text) == []
