# The service as a container: a sidecar of Spotify-to-Plex that shares its settings volume
# (see deploy/docker-compose.yml). Configured by the same environment variables as the
# command line; the settings directory is /app/config, as in the Spotify-to-Plex image.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/spotify-to-plex-mqtt \
    && /opt/spotify-to-plex-mqtt/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.12-slim
# A fixed uid, so that the shared volume's permissions can be granted to it.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/spotify-to-plex-mqtt /opt/spotify-to-plex-mqtt
ENV PATH=/opt/spotify-to-plex-mqtt/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SETTINGS_DIR=/app/config
WORKDIR /app
VOLUME ["/app/config"]
USER 10001:10001
# The HTTP API listens on 127.0.0.1:9031 by default, which is enough for this check (it runs
# inside the container); publish the port only with HTTP_HOST=0.0.0.0 and an API_TOKEN.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('HTTP_PORT', '9031'), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["spotify-to-plex-mqtt"]
