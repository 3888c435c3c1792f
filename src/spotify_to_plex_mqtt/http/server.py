"""Serving the HTTP API in the service's event loop, and refusing an unsafe exposure."""

from __future__ import annotations

import errno
import logging

from aiohttp import web

from ..errors import Error
from ..secret import Secret
from ..settings.config import HttpSettings
from ..settings.exposure import check_http_exposure
from .acceptor import CappedSite
from .api import SYNC_TIMEOUT, build_app
from .control import ControlPlane, PlexState
from .metrics import Metrics

log = logging.getLogger(__name__)

ADDRESS_IN_USE_HINT = (
    "; another program, or another instance of this service, listens on that port: stop it, "
    "choose a free port with HTTP_PORT (--http-port), or turn the API off with "
    "DISABLE_HTTP=true (--no-http)")


class HttpServerError(Error):
    """The HTTP API could not start (for example, its port is taken)."""


class HttpServer:
    """Runs `build_app` on host:port in the current loop; no I/O until `start()`."""

    def __init__(self, plane: ControlPlane, metrics: Metrics, *, host: str = "127.0.0.1",
                 port: int = 9031, token: Secret | str | None = None,
                 allow_unauthenticated: bool = False, plex_state: PlexState | None = None,
                 sync_timeout: float = SYNC_TIMEOUT, shutdown_timeout: float = 3.0,
                 max_connections: int = 0) -> None:
        self.plane = plane
        self.metrics = metrics
        self.host = host
        self.port = port
        self.allow_unauthenticated = allow_unauthenticated
        self.plex_state = plex_state
        self.sync_timeout = sync_timeout
        self.shutdown_timeout = shutdown_timeout
        self.max_connections = max_connections
        self._token = token.reveal() if isinstance(token, Secret) else token
        self._runner: web.AppRunner | None = None
        self._site: CappedSite | None = None

    @classmethod
    def for_settings(cls, http: HttpSettings, plane: ControlPlane, metrics: Metrics,
                     plex_state: PlexState) -> HttpServer | None:
        """The server `http` asks for, or None when the API is off."""
        if not http.enabled:
            return None
        return cls(plane, metrics, host=http.host, port=http.port, token=http.token,
                   allow_unauthenticated=http.allow_unauthenticated, plex_state=plex_state,
                   max_connections=http.max_connections)

    @property
    def bound_port(self) -> int | None:
        """The port actually listened on (differs from `port` when that is 0)."""
        return self._site.port if self._site is not None else None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host or "0.0.0.0"  # noqa: S104
        return f"http://{host}:{self.bound_port or self.port}"

    async def start(self) -> None:
        """Listen; raise `ConfigError` for an unsafe exposure, `HttpServerError` if binding
        fails."""
        check_http_exposure(self.host, self._token, self.allow_unauthenticated)
        app = build_app(self.plane, self._token, self.metrics, plex_state=self.plex_state,
                        sync_timeout=self.sync_timeout)
        runner = web.AppRunner(app, shutdown_timeout=self.shutdown_timeout)
        await runner.setup()
        # Not aiohttp's TCPSite: it accepts whatever the kernel queued (see `acceptor`).
        site = CappedSite(runner, self.host or None, self.port,
                          limit=self.max_connections or None)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            hint = ADDRESS_IN_USE_HINT if exc.errno == errno.EADDRINUSE else ""
            raise HttpServerError(f"the HTTP API cannot listen on {self.host}:{self.port}: "
                                  f"{exc.strerror or exc}{hint}") from None
        self._runner, self._site = runner, site
        log.info("HTTP API on %s (at most %d connections at once)", self.url, site.limit)

    async def stop(self) -> None:
        """Close WebSockets (after sending what they have queued), answer waiting requests,
        stop listening; idempotent."""
        runner, self._runner = self._runner, None
        self._site = None
        if runner is not None:
            await runner.cleanup()
