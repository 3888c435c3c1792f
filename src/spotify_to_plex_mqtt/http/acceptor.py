"""Accepting HTTP connections with a cap, and without a hot loop when descriptors run out.

asyncio's own server accepts every connection the kernel queued, so a thousand idle clients
take a thousand descriptors: then the service cannot open its input files, and every
failed accept is logged (42 MB of log in 30 s was seen). Here at most `limit` connections
are open at once; the others wait in the kernel's backlog, holding none of ours. When an
accept fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), accepting
pauses for `PAUSE` seconds, and the failures are logged at most once a minute, counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 256
PAUSE = 0.5
REPORT_EVERY = 60.0
_OUT_OF = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def connection_limit(cap: int = MAX_CONNECTIONS) -> int:
    """`cap`, or a quarter of this process's descriptor limit if that is lower: the rest
    stays for the input files, the broker connection and the file watcher."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return cap
    return max(8, min(cap, soft // 4))


class ErrorReport:
    """Accept failures, logged at most once per `every` seconds with how many there were."""

    def __init__(self, every: float = REPORT_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.total = 0
        self._unreported = 0
        self._last: float | None = None

    def note(self, exc: OSError) -> bool:
        """Count `exc`; log (and return True) when the last report is old enough."""
        self.total += 1
        self._unreported += 1
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            return False
        log.warning("the HTTP API cannot accept connections: %s (%d times since the last "
                    "report); pausing %.1f s between attempts. Too many open connections or "
                    "files: raise the open-files limit (ulimit -n) or find the client that "
                    "holds them", exc.strerror or exc, self._unreported, PAUSE)
        self._last, self._unreported = now, 0
        return True


class CappedSite(web.BaseSite):
    """An aiohttp site on host:port that accepts at most `limit` connections at once."""

    __slots__ = ("_freed", "_host", "_limit", "_port", "_sock", "_task", "errors")

    def __init__(self, runner: web.BaseRunner, host: str | None, port: int, *,
                 limit: int | None = None) -> None:
        super().__init__(runner)
        self._host, self._port = host, port
        self._limit = limit or connection_limit()
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._freed = asyncio.Event()
        self.errors = ErrorReport()

    @property
    def name(self) -> str:
        return f"http://{self._host or '0.0.0.0'}:{self.port}"  # noqa: S104 - display only

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1]) if self._sock else self._port

    @property
    def limit(self) -> int:
        return self._limit

    async def start(self) -> None:
        """Listen (raises `OSError` if the address cannot be bound) and start accepting."""
        await super().start()
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self._host or None, self._port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(self._backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        server = self._runner.server
        assert server is not None
        lost = server.connection_lost

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self._freed.set()

        server.connection_lost = connection_lost  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._accept(sock, server), name="http-accept")

    async def _slot(self, server: web.Server) -> None:
        """Wait until fewer than `limit` connections are open."""
        while len(server.connections) >= self._limit:
            self._freed.clear()
            # The server forgets a connection when its handler task ends, a moment after
            # `connection_lost`: look again at least every second.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), 1.0)

    async def _accept(self, sock: socket.socket, server: web.Server) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slot(server)
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno not in _OUT_OF:
                    log.debug("accept failed: %s", exc)
                    continue
                self.errors.note(exc)
                await asyncio.sleep(PAUSE)  # a pause, so that a full table is no hot loop
                continue
            try:
                await loop.connect_accepted_socket(server, conn)
            except OSError as exc:
                conn.close()
                log.debug("accepted connection lost at once: %s", exc)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        await super().stop()
