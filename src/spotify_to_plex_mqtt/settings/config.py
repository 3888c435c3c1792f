"""Environment variables and command-line flags, validated into one frozen `Settings`."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..core.discovery import TOPIC_PREFIX
from ..secret import MASK, Secret
from .broker_url import EXAMPLE as URL_EXAMPLE
from .broker_url import BrokerUrl, BrokerUrlError, parse_broker_url
from .cafile import EXAMPLE as CA_EXAMPLE
from .cafile import ca_file_problem
from .exposure import check_http_exposure
from .flags import build_parser
from .values import TRUE_WORDS, ConfigError, env_bool, env_number

Command = Literal["run", "demo", "purge"]
LogLevel = Literal["trace", "debug", "info", "warning", "error"]
# Most verbose first. `trace` adds paho's line per MQTT packet to `debug`.
LOG_LEVELS: tuple[LogLevel, ...] = ("trace", "debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """How to reach the broker and which topics are ours."""

    url: BrokerUrl | None
    username: str | None = None
    password: Secret | None = None
    topic_prefix: str = "spotify-to-plex"
    discovery_prefix: str = "homeassistant"
    ca_file: Path | None = None
    tls_insecure: bool = False
    # "auto": MQTT 5 (refusals are reported), 3.1.1 when the broker refuses 5; or "5", "3.1.1".
    protocol: str = "auto"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The HTTP API. Off by default here so that `Settings` built in code (tests, embedding)
    open no port; `load_settings` turns it on unless --no-http, as the CLI documents."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9031
    token: Secret | None = None
    allow_unauthenticated: bool = False
    # Open HTTP connections at most; 0: 256, or a quarter of the open-files limit if lower.
    max_connections: int = 0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs to know, fixed at start."""

    command: Command
    settings_dir: Path
    mqtt: MqttSettings
    one_shot: bool = False
    dry_run: bool = False
    debug: bool = False
    log_level: LogLevel = "info"
    # purge: remove without asking; demo: keep serving until Ctrl-C.
    yes: bool = False
    serve: bool = False
    interval: float = 300.0
    watch: bool = True
    poll: bool = False
    retry_count: int = 3
    retry_delay: float = 30.0
    debounce: float = 2.0
    min_gap: float = 10.0
    grace: float = 5.0
    bridge_entities: bool = True
    http: HttpSettings = field(default_factory=HttpSettings)
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def redacted(self) -> dict[str, Any]:
        """The settings as plain data with every secret masked, for manifests and APIs."""
        mqtt = self.mqtt
        return {
            "settings_dir": str(self.settings_dir),
            "mqtt": {
                "broker": mqtt.url.display if mqtt.url else None,
                "username": mqtt.username,
                "password": MASK if mqtt.password else None,
                "topic_prefix": mqtt.topic_prefix,
                "discovery_prefix": mqtt.discovery_prefix,
                "ca_file": str(mqtt.ca_file) if mqtt.ca_file else None,
                "tls_insecure": mqtt.tls_insecure,
                "protocol": mqtt.protocol,
            },
            "one_shot": self.one_shot,
            "dry_run": self.dry_run,
            "log_level": self.log_level,
            "interval": self.interval,
            "watch": self.watch,
            "poll": self.poll,
            "retry_count": self.retry_count,
            "retry_delay": self.retry_delay,
            "debounce": self.debounce,
            "min_gap": self.min_gap,
            "grace": self.grace,
            "bridge_entities": self.bridge_entities,
            "http": {
                "enabled": self.http.enabled,
                "host": self.http.host,
                "port": self.http.port,
                "token": MASK if self.http.token else None,
                "allow_unauthenticated": self.http.allow_unauthenticated,
            },
        }




def _debug_from_env(raw: str | None) -> LogLevel | None:
    # The original service used the `debug` npm convention: DEBUG=mqtt, DEBUG=mqtt*, DEBUG=*.
    # Paho's line per packet (thousands per sync) only when asked for by name.
    tokens = re.split(r"[\s,]+", (raw or "").strip().lower())
    if any(t.startswith("mqtt-packets") for t in tokens):
        return "trace"
    if any(t == "*" or t.startswith(("mqtt", "spotify-to-plex")) or t in TRUE_WORDS
           for t in tokens):
        return "debug"
    return None


def _level(name: str, raw: str | None) -> LogLevel | None:
    value = (raw or "").strip().lower()
    if not value:
        return None
    value = {"warn": "warning", "packets": "trace"}.get(value, value)
    for level in LOG_LEVELS:
        if level == value:
            return level
    raise ConfigError(name, f"is {raw!r}, which is not one of {', '.join(LOG_LEVELS)}",
                      f"{name}=debug")


def _log_level(args: argparse.Namespace, env: Mapping[str, str]) -> LogLevel:
    """--log-level if given, else the most verbose of --debug, LOG_LEVEL and DEBUG."""
    flag = _level("--log-level", args.log_level)
    if flag is not None:
        return flag
    debug: LogLevel | None = "debug" if args.debug else None
    given = [_level("LOG_LEVEL", env.get("LOG_LEVEL")), _debug_from_env(env.get("DEBUG")), debug]
    return min((g for g in given if g is not None), key=LOG_LEVELS.index, default="info")


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not TOPIC_PREFIX.match(value):
        raise ConfigError(
            name,
            f"is {value!r}: a topic prefix must not be empty, contain + or #, "
            "or start or end with /",
            f"{name}={default}",
        )
    return value


def _mqtt_settings(env: Mapping[str, str], required: bool) -> MqttSettings:
    raw_url = env.get("MQTT_BROKER_URL", "").strip()
    url: BrokerUrl | None = None
    if raw_url:
        try:
            url = parse_broker_url(raw_url)
        except BrokerUrlError as exc:
            raise ConfigError(
                "MQTT_BROKER_URL", f"cannot be used: {exc}", f"MQTT_BROKER_URL={URL_EXAMPLE}"
            ) from None
    elif required:
        raise ConfigError(
            "MQTT_BROKER_URL",
            "is not set; it tells the service where your MQTT broker is "
            "(use --dry-run to try without a broker, or the `demo` command)",
            f"MQTT_BROKER_URL={URL_EXAMPLE}",
        )
    username = env.get("MQTT_USERNAME") or (url.username if url else None)
    raw_password = env.get("MQTT_PASSWORD")
    password = Secret(raw_password) if raw_password else (url.password if url else None)
    if username and not password:
        raise ConfigError(
            "MQTT_PASSWORD", "is not set although MQTT_USERNAME is; set both or neither",
            "MQTT_PASSWORD=<the broker password for that user>",
        )
    if password and not username:
        raise ConfigError(
            "MQTT_USERNAME", "is not set although MQTT_PASSWORD is; set both or neither",
            "MQTT_USERNAME=homeassistant",
        )
    ca_raw = env.get("MQTT_CA_FILE", "").strip()
    ca_file = Path(ca_raw).expanduser() if ca_raw else None
    if ca_file is not None and (problem := ca_file_problem(ca_file)):
        raise ConfigError("MQTT_CA_FILE", problem, CA_EXAMPLE)
    return MqttSettings(
        url=url,
        username=username,
        password=password,
        topic_prefix=_prefix(env, "MQTT_TOPIC_PREFIX", "spotify-to-plex"),
        discovery_prefix=_prefix(env, "MQTT_DISCOVERY_PREFIX", "homeassistant"),
        ca_file=ca_file,
        tls_insecure=bool(env_bool(env, "MQTT_TLS_INSECURE")),
        protocol=_protocol(env),
    )


_PROTOCOLS = {"auto": "auto", "5": "5", "5.0": "5", "v5": "5", "3.1.1": "3.1.1",
              "311": "3.1.1", "v311": "3.1.1", "4": "3.1.1"}


def _protocol(env: Mapping[str, str]) -> str:
    raw = env.get("MQTT_PROTOCOL", "").strip().lower() or "auto"
    if raw not in _PROTOCOLS:
        raise ConfigError("MQTT_PROTOCOL", f"is {raw!r}; it must be auto, 5 or 3.1.1",
                          "MQTT_PROTOCOL=auto")
    return _PROTOCOLS[raw]


def _pick(flag: Any, from_env: Callable[[], Any], default: Any) -> Any:
    """The flag if given (the env var is then not even parsed), else the env var, else default."""
    if flag is not None:
        return flag
    env_value = from_env()
    return default if env_value is None else env_value


def _http_settings(args: argparse.Namespace, env: Mapping[str, str], *,
                   serves: bool) -> HttpSettings:
    """`serves`: whether this mode listens at all (one-shot and dry-run never do, so an
    exposed HTTP_HOST left in a shared env file must not stop them)."""
    port = int(_pick(args.http_port, lambda: env_number(env, "HTTP_PORT", int), 9031))
    if not 0 <= port <= 65535:
        raise ConfigError("--http-port", f"is {port}, which is not a TCP port", "--http-port 9031")
    token = env.get("API_TOKEN", "").strip()
    http = HttpSettings(
        enabled=not _pick(args.no_http, lambda: env_bool(env, "DISABLE_HTTP"), False),
        host=(args.http_host or env.get("HTTP_HOST", "")).strip() or "127.0.0.1",
        port=port,
        token=Secret(token) if token else None,
        allow_unauthenticated=bool(_pick(args.http_allow_unauthenticated,
                                         lambda: env_bool(env, "HTTP_ALLOW_UNAUTHENTICATED"),
                                         False)),
        max_connections=int(env_number(env, "HTTP_MAX_CONNECTIONS", int) or 0),
    )
    if http.enabled and serves:
        # Lazy: api imports this module (for ConfigError).
        check_http_exposure(http.host, token or None, http.allow_unauthenticated)
    return http


def load_settings(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    """Build `Settings` from argv and env (a flag wins over its env var); raise `ConfigError`."""
    args = build_parser().parse_args(list(argv))
    command: Command = args.command
    dry_run = bool(_pick(args.dry_run, lambda: env_bool(env, "MQTT_DRY_RUN"), False))
    # purge always talks to a broker: it has no dry run (without --yes it only lists).
    mqtt = _mqtt_settings(env, required=command == "purge" or (command == "run" and not dry_run))
    one_shot = bool(_pick(args.one_shot, lambda: env_bool(env, "ONE_SHOT"), False))
    settings_dir = Path(
        args.settings_dir or env.get("SETTINGS_DIR") or env.get("STORAGE_DIR") or "./settings"
    ).expanduser()
    for flag, name in ((args.interval, "--interval"), (args.retry_delay, "--retry-delay"),
                       (args.debounce, "--debounce"), (args.min_gap, "--min-gap"),
                       (args.retry_count, "--retry-count")):
        if flag is not None and not math.isfinite(flag):
            # float() accepts "nan" and "inf"; a nan interval would spin, an inf one overflow.
            raise ConfigError(name, f"is {flag}, which is not a finite number", f"{name} 30")
        if flag is not None and flag < 0:
            raise ConfigError(name, f"is {flag}, which is negative", f"{name} 30")
    log_level = _log_level(args, env)
    secrets = tuple(s for s in (mqtt.password.reveal() if mqtt.password else "",
                                env.get("PLEX_TOKEN", ""), env.get("API_TOKEN", "")) if s)
    def number(flag: float | None, name: str, kind: Callable[[str], float], default: float) -> Any:
        return _pick(flag, lambda: env_number(env, name, kind), default)

    def boolean(flag: bool | None, name: str) -> bool:
        return bool(_pick(flag, lambda: env_bool(env, name), False))

    return Settings(
        command=command,
        settings_dir=settings_dir,
        mqtt=mqtt,
        one_shot=one_shot,
        dry_run=dry_run,
        debug=log_level in ("trace", "debug"),
        log_level=log_level,
        yes=bool(args.yes),
        serve=bool(args.serve),
        interval=float(number(args.interval, "SYNC_INTERVAL", float, 300.0)),
        watch=not boolean(args.no_watch, "DISABLE_WATCH"),
        poll=boolean(args.poll, "WATCH_POLL"),
        retry_count=int(number(args.retry_count, "RETRY_COUNT", int, 3)),
        retry_delay=float(number(args.retry_delay, "RETRY_DELAY", float, 30.0)),
        debounce=float(number(args.debounce, "DEBOUNCE", float, 2.0)),
        min_gap=float(number(args.min_gap, "MIN_SYNC_GAP", float, 10.0)),
        bridge_entities=not boolean(args.no_bridge_entities, "DISABLE_BRIDGE_ENTITIES"),
        http=_http_settings(args, env, serves=command != "purge" and not (one_shot or dry_run)),
        secrets=secrets,
    )
