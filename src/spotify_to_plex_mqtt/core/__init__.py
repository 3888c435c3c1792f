"""The functional core: pure values and functions (library model and parsing, entities, topics,
rendering, reconcile, the sync plan, the known-broker-state digests, results). No I/O: no
files, sockets, asyncio, aiomqtt or aiohttp (enforced by import-linter, see pyproject.toml).
"""
