"""Hostile case: os._exit at import (skips every handler)."""

import os

os._exit(7)
