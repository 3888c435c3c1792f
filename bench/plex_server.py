"""The Plex stand-in (`tests/support/plex_standin.py`) in its own process, serving the catalogue of
a generated library: `python -m bench.plex_server --size N --latency 0.005`.

Prints `port <n>` once listening; stops on SIGTERM/SIGINT or when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from plex_standin import PlexStandIn

from .library import plex_catalogue

TOKEN = "bench-plex-token"  # noqa: S105 - the stand-in's made-up token
MACHINE_ID = "bench-machine-id"


async def serve(size: int, latency: float) -> None:
    albums, playlists = plex_catalogue(size)
    standin = PlexStandIn(token=TOKEN, albums=albums, playlists=playlists,
                          machine_id=MACHINE_ID, latency=latency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    async with standin:
        print(f"port {standin.port}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.005)
    args = parser.parse_args()
    asyncio.run(serve(args.size, args.latency))


if __name__ == "__main__":
    main()
