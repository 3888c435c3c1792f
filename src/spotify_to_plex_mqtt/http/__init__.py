"""The HTTP API and web page in the service's loop: server, routes, OpenAPI, Prometheus metrics
fed by events, static files.
"""
