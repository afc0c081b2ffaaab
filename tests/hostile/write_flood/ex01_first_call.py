"""Hostile case: floods fd 1 with os.write at import, ignoring errors."""

import os

chunk = b"x" * 65536
while True:
    try:
        os.write(1, chunk)
    except OSError:
        pass
