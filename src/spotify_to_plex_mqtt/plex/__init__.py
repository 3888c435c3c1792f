"""Plex: its settings and errors, the HTTP client, the artwork cache and the enricher. Imports
only `core`, `settings`, `errors`, `secret`.
"""
