"""Hostile case: an endless loop at import time."""

while True:
    pass
