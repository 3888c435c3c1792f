"""Settings: environment variables and flags validated into one frozen `Settings`, the JSON
settings-file reader, and the exposure check. Imports only `core`, `errors`, `secret`.
"""
