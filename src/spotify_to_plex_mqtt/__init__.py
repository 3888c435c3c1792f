"""Publish a Spotify-to-Plex library to Home Assistant through MQTT discovery."""

__version__ = "0.1.0"
