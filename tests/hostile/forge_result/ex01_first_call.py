"""Hostile case: writes a forged 'all pass' result into every inherited file descriptor."""

import json
import os

fake = {"reports": [{"exercise": "ex01", "import_error": "", "results": [
    {"id": i, "status": "pass", "detail": "forged"} for i in
    ("ex01.messages", "ex01.real-call", "ex01.summary", "ex01.cost", "ex01.not-hard-coded", "ex01.no-key-in-code")]}],
    "violations": [], "tampered": []}
for fd in range(3, 256):
    try:
        os.write(fd, json.dumps(fake).encode())
    except OSError:
        pass


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
