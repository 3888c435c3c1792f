"""Run a real Mosquitto broker from the test suite, and talk to it with paho-mqtt.

`Mosquitto` writes its own configuration (password file, optional TLS certificates,
optional websockets / anonymous listeners, optional persistence) into a working
directory and runs ``mosquitto -c <conf>`` on free ports of 127.0.0.1.  Nothing
happens on construction; `Mosquitto.start` does the I/O and returns once every
listener accepts TCP connections.

The module-level helpers (`retained`, `publish_retained`, `clear_retained`,
`collect`, `connected_client`) are synchronous and use paho-mqtt directly, so
they are independent of the code under test.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

__all__ = [
    "DEFAULT_CREDENTIALS",
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "INSTALL_HINT",
    "Mosquitto",
    "MosquittoError",
    "MqttConnectError",
    "clear_retained",
    "collect",
    "connected_client",
    "find_mosquitto",
    "publish_retained",
    "retained",
]

DEFAULT_CREDENTIALS = ("tester", "s3cret-Broker-Pw!")  # a test-only broker account
DEFAULT_USERNAME, DEFAULT_PASSWORD = DEFAULT_CREDENTIALS
INSTALL_HINT = "run `apt-get install -y mosquitto mosquitto-clients`"

_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin", "/opt/homebrew/sbin")
_RUNNING_LINE = re.compile(r"mosquitto version \S+ running")
_POLL_INTERVAL = 0.02  # seconds between readiness checks
_LIVE: weakref.WeakSet[Mosquitto] = weakref.WeakSet()


class MosquittoError(RuntimeError):
    """The broker could not be started, or is missing."""


class MqttConnectError(ConnectionError):
    """The broker answered CONNECT with a failure (e.g. not authorised) or never answered."""

    def __init__(self, message: str, reason_code: ReasonCode | None = None) -> None:
        super().__init__(message)
        self.reason_code = reason_code


def _which(name: str) -> str | None:
    """Find an executable on PATH, falling back to the sbin directories (not always on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _SBIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_mosquitto() -> str:
    """Path of the ``mosquitto`` broker binary; raise `MosquittoError` with a hint if missing."""
    found = _which("mosquitto")
    if found is None:
        raise MosquittoError(f"the mosquitto broker is not installed: {INSTALL_HINT}")
    return found


def _require(name: str) -> str:
    found = _which(name)
    if found is None:
        raise MosquittoError(f"`{name}` is not installed: {INSTALL_HINT}")
    return found


def _run(argv: Sequence[str], cwd: Path) -> None:
    result = subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise MosquittoError(
            f"{' '.join(argv)} failed with exit code {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )


_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = spotify-to-plex-mqtt test CA

[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Create a self-signed CA and a server certificate for 127.0.0.1/localhost with openssl."""
    openssl = _require("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cnf = directory / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(
        [openssl, "req", "-x509", "-new", *ec, "-config", str(cnf), "-extensions", "v3_ca",
         "-subj", "/CN=spotify-to-plex-mqtt test CA", "-days", "7",
         "-keyout", "ca.key", "-out", "ca.crt"],
        directory,
    )  # fmt: skip
    _run(
        [openssl, "req", "-new", *ec, "-config", str(cnf), "-subj", "/CN=localhost",
         "-keyout", "server.key", "-out", "server.csr"],
        directory,
    )  # fmt: skip
    _run(
        [openssl, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "7", "-extfile", str(cnf), "-extensions", "v3_server",
         "-out", "server.crt"],
        directory,
    )  # fmt: skip
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


def _free_ports(host: str, count: int) -> list[int]:
    """Ports the kernel reports free, found by binding port 0 (all held open until all found)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Mosquitto:
    """A Mosquitto broker subprocess with password authentication, owned by a test.

    Listeners (all on ``host``, ports chosen on the first `start`):

    * ``port``: plain MQTT, username/password required;
    * ``tls_port`` (``tls=True``): MQTT over TLS with a generated CA (``ca_file``);
    * ``ws_port`` (``websockets=True``): MQTT over websockets, no TLS;
    * ``anonymous_port`` (``anonymous_listener=True``): plain MQTT without authentication
      (this needs ``per_listener_settings true``, which is then written automatically).

    ``acl`` (lines of a Mosquitto ACL file, e.g. ``["user tester", "topic read x/#"]``)
    restricts what the accounts may read and write; without it everything is allowed.
    ``extra_users`` (``(name, password)`` pairs) are further accounts, e.g. one that the ACL
    restricts while the default account, used by the helpers below, reads everything.

    With ``persistence=True`` retained messages and persistent sessions survive `restart`
    (Mosquitto saves its database on a clean SIGTERM shutdown, or every
    ``autosave_interval`` seconds / changes); `kill` skips that save.

    ``workdir`` (config, log, password file, certificates, database) is a fresh temporary
    directory removed by `close`, unless given by the caller (then it is kept).
    """

    def __init__(
        self,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        host: str = "127.0.0.1",
        tls: bool = False,
        websockets: bool = False,
        anonymous_listener: bool = False,
        persistence: bool = False,
        autosave_interval: int | None = None,
        autosave_on_changes: bool = False,
        extra_config: Sequence[str] = (),
        acl: Sequence[str] | None = None,
        extra_users: Sequence[tuple[str, str]] = (),
        workdir: Path | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self._username = username
        self._password = password
        self._host = host
        self._tls = tls
        self._websockets = websockets
        self._anonymous_listener = anonymous_listener
        self._persistence = persistence
        self._autosave_interval = autosave_interval
        self._autosave_on_changes = autosave_on_changes
        self._extra_config = tuple(extra_config)
        self._acl = None if acl is None else tuple(acl)
        self._extra_users = tuple(extra_users)
        self._given_workdir = workdir
        self._workdir: Path | None = None
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._ports: dict[str, int] = {}
        self._ca_file: Path | None = None
        self._server_cert: Path | None = None
        self._server_key: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._prepared = False

    # -- properties ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def username(self) -> str:
        return self._username

    @property
    def password(self) -> str:
        return self._password

    @property
    def persistence(self) -> bool:
        return self._persistence

    @property
    def port(self) -> int:
        """The authenticated plain-MQTT listener."""
        return self._port("mqtt")

    @property
    def tls_port(self) -> int:
        """The authenticated MQTT-over-TLS listener (``tls=True``)."""
        return self._port("tls")

    @property
    def ws_port(self) -> int:
        """The authenticated MQTT-over-websockets listener (``websockets=True``)."""
        return self._port("ws")

    @property
    def anonymous_port(self) -> int:
        """The plain-MQTT listener accepting anonymous clients (``anonymous_listener=True``)."""
        return self._port("anonymous")

    @property
    def url(self) -> str:
        return f"mqtt://{self._host}:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://{self._host}:{self.tls_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host}:{self.ws_port}"

    @property
    def ca_file(self) -> Path:
        """The PEM CA certificate that signed the TLS listener's certificate."""
        if not self._tls:
            raise MosquittoError("this broker has no TLS listener (construct it with tls=True)")
        if self._ca_file is None:
            raise MosquittoError("the broker has not been started yet")
        return self._ca_file

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise MosquittoError("the broker has not been started yet")
        return self._workdir

    @property
    def config_file(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _port(self, name: str) -> int:
        enabled = {
            "mqtt": True,
            "tls": self._tls,
            "ws": self._websockets,
            "anonymous": self._anonymous_listener,
        }
        if not enabled[name]:
            raise MosquittoError(f"this broker has no {name!r} listener")
        if name not in self._ports:
            raise MosquittoError("the broker has not been started yet")
        return self._ports[name]

    def _listener_names(self) -> list[str]:
        names = ["mqtt"]
        if self._tls:
            names.append("tls")
        if self._websockets:
            names.append("ws")
        if self._anonymous_listener:
            names.append("anonymous")
        return names

    # -- logs ---------------------------------------------------------------------------------

    def log_text(self) -> str:
        """Mosquitto's own log (``log_type all``), accumulated over restarts."""
        return self._read(self._workdir / "mosquitto.log" if self._workdir else None)

    def output_text(self) -> str:
        """What the mosquitto process wrote to stdout/stderr (config errors end up here)."""
        return self._read(self._workdir / "mosquitto.out" if self._workdir else None)

    @staticmethod
    def _read(path: Path | None) -> str:
        if path is None or not path.exists():
            return ""
        return path.read_text(errors="replace")

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        ports = ", ".join(f"{name}={port}" for name, port in self._ports.items())
        state = "running" if self.running else "stopped"
        return f"<Mosquitto {self._host} {ports or 'no ports yet'} {state}>"

    def start(self) -> None:
        """Start the broker and return once every listener accepts TCP connections.

        Ports are chosen on the first start and kept by later starts (see `restart`).
        """
        if self.running:
            raise MosquittoError(f"{self!r} is already running")
        executable = find_mosquitto()
        self._prepare()
        fresh = not self._ports
        attempts = 3 if fresh else 1
        for attempt in range(attempts):
            if fresh:
                self._ports = dict(
                    zip(
                        self._listener_names(),
                        _free_ports(self._host, len(self._listener_names())),
                        strict=True,
                    )
                )
            try:
                self._launch(executable)
                return
            except MosquittoError:
                # Another process may have taken a port between probing and binding it.
                if attempt + 1 < attempts and "Address already in use" in self._failure_text():
                    continue
                raise

    def stop(self) -> None:
        """SIGTERM the broker (it saves its database, if persistent) and wait for it to exit."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=self._stop_timeout)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the broker: no clean shutdown, no database save, clients see a dropped socket."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=self._stop_timeout)
        self._reap()

    def restart(self, keep_port: bool = True) -> None:
        """`stop` then `start`; on the same ports unless ``keep_port`` is false.

        Without persistence the broker comes back empty (no retained messages, no sessions).
        """
        self.stop()
        if not keep_port:
            self._ports = {}
        self.start()

    def close(self) -> None:
        """Stop the broker and remove its working directory (unless the caller provided it)."""
        self.stop()
        if self._given_workdir is None and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._prepared = False
            self._ca_file = None

    # -- internals ----------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self._prepared:
            return
        if self._given_workdir is not None:
            self._workdir = self._given_workdir
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="mosquitto-"))
        passwd = _require("mosquitto_passwd")
        password_file = self._workdir / "passwd"
        password_file.unlink(missing_ok=True)
        _run(
            [passwd, "-b", "-c", str(password_file), self._username, self._password],
            self._workdir,
        )
        for user, secret in self._extra_users:
            _run([passwd, "-b", str(password_file), user, secret], self._workdir)
        if self._tls:
            self._ca_file, self._server_cert, self._server_key = _make_certificates(
                self._workdir / "tls"
            )
        if self._persistence:
            (self._workdir / "data").mkdir(exist_ok=True)
        self._prepared = True

    def _config(self) -> str:
        workdir = self.workdir
        auth = ["allow_anonymous false", f"password_file {workdir / 'passwd'}"]
        if self._acl is not None:
            acl_file = workdir / "acl"
            acl_file.write_text("\n".join(self._acl) + "\n")
            auth.append(f"acl_file {acl_file}")
        per_listener = self._anonymous_listener
        lines = [
            "# Written by tests/support/mosquitto.py",
            # When run as root mosquitto switches to the `mosquitto` user, which cannot read
            # our private temp dir; naming the current user keeps it as is (ignored if not root).
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            f"log_dest file {workdir / 'mosquitto.log'}",
            "log_type all",
            "log_timestamp true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
        ]
        if self._persistence:
            lines += [
                "persistence true",
                f"persistence_location {workdir / 'data'}/",
                "persistence_file mosquitto.db",
            ]
            if self._autosave_interval is not None:
                lines.append(f"autosave_interval {self._autosave_interval}")
            if self._autosave_on_changes:
                lines.append("autosave_on_changes true")
        else:
            lines.append("persistence false")
        lines += self._extra_config
        if per_listener:
            lines.append("per_listener_settings true")
        else:
            lines += auth
        listener_auth = auth if per_listener else []

        lines += ["", f"listener {self._ports['mqtt']} {self._host}", *listener_auth]
        if self._tls:
            lines += [
                "",
                f"listener {self._ports['tls']} {self._host}",
                f"cafile {self._ca_file}",
                f"certfile {self._server_cert}",
                f"keyfile {self._server_key}",
                *listener_auth,
            ]
        if self._websockets:
            lines += [
                "",
                f"listener {self._ports['ws']} {self._host}",
                "protocol websockets",
                *listener_auth,
            ]
        if self._anonymous_listener:
            lines += ["", f"listener {self._ports['anonymous']} {self._host}",
                      "allow_anonymous true"]  # fmt: skip
        return "\n".join(lines) + "\n"

    def _launch(self, executable: str) -> None:
        workdir = self.workdir
        self.config_file.write_text(self._config())
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self._output = (workdir / "mosquitto.out").open("ab")
        self._process = subprocess.Popen(
            [executable, "-c", str(self.config_file)],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        _LIVE.add(self)
        deadline = time.monotonic() + self._start_timeout
        pending = [self._ports[name] for name in self._listener_names()]
        while True:
            if self._process.poll() is not None:
                self._fail(f"mosquitto exited with code {self._process.returncode} on start")
            # "running" is logged once every listener is open: without it a port could be
            # answered by another process while this mosquitto fails to bind it.
            running = _RUNNING_LINE.search(self._log_since(log_offset)) is not None
            pending = [port for port in pending if not _accepts(self._host, port)]
            if running and not pending and self._process.poll() is None:
                return
            if time.monotonic() >= deadline:
                self.kill()
                self._fail(
                    f"mosquitto did not accept connections on port(s) {pending} "
                    f"within {self._start_timeout} s"
                )
            time.sleep(_POLL_INTERVAL)

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _failure_text(self) -> str:
        return f"{self.output_text()}\n{self.log_text()}"

    def _fail(self, message: str) -> None:
        self._reap()
        config = self.config_file.read_text() if self.config_file.exists() else ""
        raise MosquittoError(
            f"{message}\n--- config ---\n{config}--- stdout/stderr ---\n{self.output_text()}"
            f"--- log ---\n{self.log_text()}"
        )

    def _reap(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._process is not None and self._process.poll() is not None:
            self._process = None
            _LIVE.discard(self)


@atexit.register
def _kill_leftovers() -> None:
    for broker in list(_LIVE):
        with contextlib.suppress(Exception):
            broker.kill()


# -- paho-mqtt helpers ------------------------------------------------------------------------

Transport = Literal["tcp", "websockets"]


@contextlib.contextmanager
def connected_client(
    broker: Mosquitto,
    *,
    port: int | None = None,
    transport: Transport = "tcp",
    tls: bool = False,
    username: str | None = None,
    password: str | None = None,
    anonymous: bool = False,
    client_id: str | None = None,
    timeout: float = 5.0,
) -> Iterator[mqtt.Client]:
    """A paho client (MQTT 3.1.1, network loop in a thread), connected to ``broker``.

    Credentials default to the broker's; ``anonymous=True`` sends none.  ``port`` defaults to
    the listener matching ``transport``/``tls``.  Raises `MqttConnectError` (with the CONNACK
    ``reason_code``) when the broker refuses the connection or does not answer in time.
    """
    if port is None:
        if transport == "websockets":
            port = broker.ws_port
        else:
            port = broker.tls_port if tls else broker.port
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"test-helper-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv311,
        transport=transport,
    )
    if not anonymous:
        client.username_pw_set(username or broker.username, password or broker.password)
    if tls:
        client.tls_set(ca_certs=str(broker.ca_file))
    connected = threading.Event()
    result: list[ReasonCode] = []

    def on_connect(
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        result.append(reason_code)
        if reason_code.is_failure:
            # Stop paho's loop from retrying (it would sleep reconnect_delay first).
            client.disconnect()
        connected.set()

    client.on_connect = on_connect
    client.connect(broker.host, port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise MqttConnectError(f"no CONNACK from {broker.host}:{port} within {timeout} s")
        if result[0].is_failure:
            raise MqttConnectError(
                f"{broker.host}:{port} refused the connection: {result[0]}", result[0]
            )
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def _subscribe(client: mqtt.Client, filters: Sequence[str], qos: int, timeout: float) -> None:
    """Subscribe and wait for the SUBACK; raise if any filter was refused."""
    acked = threading.Event()
    codes: list[ReasonCode] = []

    def on_subscribe(
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        codes.extend(reason_codes)
        acked.set()

    client.on_subscribe = on_subscribe
    rc, _mid = client.subscribe([(topic_filter, qos) for topic_filter in filters])
    if rc != mqtt.MQTT_ERR_SUCCESS:
        raise MqttConnectError(f"subscribe failed: {mqtt.error_string(rc)}")
    if not acked.wait(timeout):
        raise TimeoutError(f"no SUBACK for {list(filters)} within {timeout} s")
    refused = [f for f, code in zip(filters, codes, strict=False) if code.is_failure]
    if refused:
        raise MqttConnectError(f"subscription refused for {refused}: {codes}")


def retained(
    broker: Mosquitto, filters: Sequence[str] = ("#",), timeout: float = 5.0
) -> dict[str, bytes]:
    """The retained messages matching ``filters``, as ``{topic: payload}``.

    Subscribes to the filters plus a unique ``test-marker/<uuid>`` topic, then publishes to
    the marker: the broker queues retained messages while handling the SUBSCRIBE, i.e. before
    it sees the marker, so the marker coming back marks the end of retained delivery.
    Topics starting with ``$`` are not matched by ``#`` (MQTT rule).

    The subscription is QoS 0 on purpose: with Mosquitto's defaults (``max_inflight_messages
    20``, ``max_queued_messages 1000``) a QoS 1 subscriber is sent only the first 1020
    retained messages, the rest (and the marker) are silently dropped. QoS 0 fares better
    but not without bound: past ~10,000 retained messages it is cut short too (then the
    marker is lost, or comes after the drops). Read bigger sets by exact topic names, as
    tests/modes/test_scale.py does.
    """
    marker = f"test-marker/{uuid.uuid4().hex}"
    found: dict[str, bytes] = {}
    done = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == marker:
            done.set()
        elif message.retain and not done.is_set():
            found[message.topic] = bytes(message.payload)

    deadline = time.monotonic() + timeout
    with connected_client(broker, timeout=timeout) as client:
        client.on_message = on_message
        _subscribe(client, [*filters, marker], 0, max(deadline - time.monotonic(), 0.1))
        client.publish(marker, b"end-of-retained", qos=1)
        if not done.wait(max(deadline - time.monotonic(), 0.1)):
            raise TimeoutError(
                f"marker {marker} did not come back within {timeout} s "
                f"({len(found)} retained messages so far)"
            )
    return dict(found)


def publish_retained(broker: Mosquitto, messages: dict[str, bytes], timeout: float = 5.0) -> None:
    """Publish ``messages`` retained with QoS 1 and wait for every PUBACK.

    An empty payload clears the topic's retained message.
    """
    deadline = time.monotonic() + timeout
    with connected_client(broker, timeout=timeout) as client:
        infos = [
            (topic, client.publish(topic, payload, qos=1, retain=True))
            for topic, payload in messages.items()
        ]
        for topic, info in infos:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.0))
            if not info.is_published():
                raise TimeoutError(f"no PUBACK for retained {topic!r} within {timeout} s")


def clear_retained(
    broker: Mosquitto, filters: Sequence[str] = ("#",), timeout: float = 5.0
) -> list[str]:
    """Clear every retained message matching ``filters``; return the cleared topics."""
    topics = sorted(retained(broker, filters, timeout=timeout))
    if topics:
        publish_retained(broker, dict.fromkeys(topics, b""), timeout=timeout)
    return topics


def collect(
    broker: Mosquitto,
    topic_filter: str,
    until: Callable[[list[tuple[str, bytes]]], bool],
    timeout: float = 5.0,
    *,
    qos: int = 1,
    after_subscribe: Callable[[], object] | None = None,
) -> list[tuple[str, bytes]]:
    """Subscribe to ``topic_filter`` (QoS ``qos``) and return the ``(topic, payload)`` messages
    received once ``until(messages)`` holds; raise `TimeoutError` at the deadline.

    Retained messages delivered on subscription are included (beware: at QoS 1 Mosquitto
    sends at most ~1020 of them by default, see `retained`).  ``after_subscribe`` is called
    once the SUBACK arrived, e.g. to trigger the publications being waited for.
    """
    messages: list[tuple[str, bytes]] = []
    changed = threading.Condition()

    def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with changed:
            messages.append((message.topic, bytes(message.payload)))
            changed.notify_all()

    deadline = time.monotonic() + timeout
    with connected_client(broker, timeout=timeout) as client:
        client.on_message = on_message
        _subscribe(client, [topic_filter], qos, max(deadline - time.monotonic(), 0.1))
        if after_subscribe is not None:
            after_subscribe()
        with changed:
            while not until(list(messages)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"condition not met on {topic_filter!r} within {timeout} s; "
                        f"received {messages!r}"
                    )
                changed.wait(remaining)
            return list(messages)
