"""The command line: flags, their help, and examples (values are validated in `config`)."""

from __future__ import annotations

import argparse

from .. import __version__

EPILOG = """\
examples:
  MQTT_BROKER_URL=mqtt://192.168.1.10:1883 spotify-to-plex-mqtt --settings-dir /app/config
  MQTT_BROKER_URL=mqtts://u:pw@broker:8883 spotify-to-plex-mqtt --one-shot
  spotify-to-plex-mqtt --dry-run --settings-dir ./settings     # writes mqtt_dry_run_manifest.json
  spotify-to-plex-mqtt demo                                    # embedded broker + sample library
  spotify-to-plex-mqtt demo --serve                            # ... and keep it up until Ctrl-C
  MQTT_BROKER_URL=mqtt://192.168.1.10:1883 spotify-to-plex-mqtt purge   # lists; --yes removes

MQTT settings come from the environment: MQTT_BROKER_URL, MQTT_USERNAME, MQTT_PASSWORD,
MQTT_TOPIC_PREFIX, MQTT_DISCOVERY_PREFIX, MQTT_CA_FILE, MQTT_TLS_INSECURE, MQTT_PROTOCOL,
MQTT_DRY_RUN, DEBUG, LOG_LEVEL.
HTTP API: API_TOKEN (bearer token for POST /sync and the /events WebSocket), HTTP_HOST,
HTTP_PORT, DISABLE_HTTP, HTTP_ALLOW_UNAUTHENTICATED, HTTP_MAX_CONNECTIONS.
Plex (artwork, plex_uri; plex.json in the settings directory otherwise): PLEX_URL,
PLEX_TOKEN, PLEX_VERIFY_TLS.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spotify-to-plex-mqtt",
        description="Publish your labelled Spotify-to-Plex library to Home Assistant via MQTT.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", choices=["run", "demo", "purge"], default="run",
                        help="run (default) syncs your library; demo starts an embedded broker "
                             "with a sample library; purge removes everything this service "
                             "published from the broker")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--settings-dir", metavar="DIR",
                        help="Spotify-to-Plex settings directory (env SETTINGS_DIR or "
                             "STORAGE_DIR; default ./settings)")
    parser.add_argument("--yes", "-y", action="store_true", default=False,
                        help="purge: remove without asking")
    parser.add_argument("--serve", action="store_true", default=False,
                        help="demo: keep the embedded broker and the service (with its HTTP "
                             "API) running until Ctrl-C")
    parser.add_argument("--one-shot", "--no-continuous", action="store_true", default=None,
                        help="sync once and exit (env ONE_SHOT)")
    parser.add_argument("--dry-run", action="store_true", default=None,
                        help="publish nothing; write mqtt_dry_run_manifest.json (env MQTT_DRY_RUN)")
    parser.add_argument("-d", "--debug", action="store_true", default=None,
                        help="debug logging (env DEBUG=mqtt or DEBUG=*); MQTT packets only "
                             "with --log-level trace")
    parser.add_argument("--log-level", metavar="LEVEL",
                        help="trace (debug + every MQTT packet), debug, info, warning or "
                             "error (env LOG_LEVEL, or DEBUG=mqtt-packets for trace; "
                             "default info)")
    parser.add_argument("--interval", type=float, metavar="SECONDS",
                        help="periodic re-sync, 0 = off (env SYNC_INTERVAL; default 300)")
    parser.add_argument("--no-watch", "--disable-watch", dest="no_watch", action="store_true",
                        default=None,
                        help="do not watch the settings directory (env DISABLE_WATCH)")
    parser.add_argument("--poll", action="store_true", default=None,
                        help="watch by polling, for network/container mounts (env WATCH_POLL)")
    parser.add_argument("--retry-count", type=int, metavar="N",
                        help="retries of a failed sync (env RETRY_COUNT; default 3)")
    parser.add_argument("--retry-delay", type=float, metavar="SECONDS",
                        help="base of the retry backoff (env RETRY_DELAY; default 30)")
    parser.add_argument("--debounce", type=float, metavar="SECONDS",
                        help="quiet time after a file change before syncing (env DEBOUNCE; "
                             "default 2)")
    parser.add_argument("--min-gap", type=float, metavar="SECONDS",
                        help="rate limit: after a burst of 5 syncs, one per SECONDS (env "
                             "MIN_SYNC_GAP; default 10)")
    parser.add_argument("--no-bridge-entities", action="store_true", default=None,
                        help="no refresh button / last sync / problem entities in Home "
                             "Assistant; removes them if present (env DISABLE_BRIDGE_ENTITIES)")
    parser.add_argument("--http-host", metavar="HOST",
                        help="address of the HTTP API (env HTTP_HOST; default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, metavar="PORT",
                        help="port of the HTTP API (env HTTP_PORT; default 9031)")
    parser.add_argument("--no-http", action="store_true", default=None,
                        help="no HTTP API (env DISABLE_HTTP)")
    parser.add_argument("--http-allow-unauthenticated", action="store_true", default=None,
                        help="serve the HTTP API on a non-loopback address without API_TOKEN "
                             "(env HTTP_ALLOW_UNAUTHENTICATED)")
    return parser
