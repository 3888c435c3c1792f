"""The one base class of this package's errors, and where each kind is raised.

Catching `Error` catches every failure this package reports on purpose; anything else is a
bug. The tree (module of definition in brackets):

    Error
    ├── ConfigError            a setting is wrong; exit code 2    [settings.config]
    ├── BrokerUrlError         MQTT_BROKER_URL unparsable (also a ValueError)
    │                                                             [settings.broker_url]
    ├── FileProblem            an input file unusable as a whole  [core.problems]
    │   └── FileMissing        it does not exist (plex.json may not)
    ├── BrokerError            the broker failed or refused       [mqtt.broker_errors]
    │   ├── BrokerRefused      a refusal (ACL) would repeat: no retry
    │   ├── ConnectionLost     the connection went away mid-sync
    │   └── PrefixTaken        another live instance owns the prefix [mqtt.presence]
    ├── PublishFailed          paho refused a publish / no PUBACK [mqtt.window]
    ├── LostWhileReading       connection lost during a retained read [mqtt.retained]
    ├── ReadDenied             the broker denied a retained read  [mqtt.retained]
    ├── PlexError              Plex failed                        [plex.errors]
    │   ├── PlexConfigError    plex.json / PLEX_* are wrong
    │   ├── PlexAuthError      the token was refused
    │   └── PlexUnavailable    Plex cannot be reached now
    └── HttpServerError        the HTTP API could not start       [http.server]

Messages never contain secrets (see `secret`): they are shown to users and logged.
"""

from __future__ import annotations


class Error(Exception):
    """Base of every error this package raises on purpose."""
