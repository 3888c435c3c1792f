"""The long-running service: the composition root, its phases (start, main loop, shutdown), the
connection and sync loops, the event log.
"""
