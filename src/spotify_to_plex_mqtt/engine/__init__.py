"""The asynchronous engine below the HTTP API: health events, their bus and the status, the
trigger scheduler, and the sync runner (I/O around `core.plan`).
"""
