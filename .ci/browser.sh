#!/usr/bin/env bash
# Installs what the browser tests (tests/web/) need: Debian's Chromium, driven
# by Playwright's Python package (a dev dependency; Playwright's own browser download is not
# used). Idempotent: does nothing when Chromium is already there.
set -euo pipefail

# Playwright's bundled node needs libatomic, which a minimal Debian lacks.
if { command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; } \
    && compgen -G '/usr/lib/*/libatomic.so.1' >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "The browser tests need Chromium, which is not installed. As root, run:" >&2
  echo "  apt-get update && apt-get install -y chromium libatomic1" >&2
  echo "(or set CHROMIUM=/path/to/chromium for another Chromium or Chrome build)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  chromium libatomic1 fonts-dejavu-core fonts-noto-color-emoji >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "chromium did not install" >&2; exit 1; }
