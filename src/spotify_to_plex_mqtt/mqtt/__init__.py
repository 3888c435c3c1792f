"""The MQTT side: the only importers of aiomqtt and paho (session, retained read, publishing
window, owner record; every private hook in `_paho`). Imports only `core`, `settings`,
`errors`, `secret`.
"""
