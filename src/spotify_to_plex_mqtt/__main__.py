"""`python -m spotify_to_plex_mqtt`."""

import sys

from .cli import main

sys.exit(main())
