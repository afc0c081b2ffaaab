"""Hostile case: asks labkit for a client, hoping it loads the instructor's .env key, and prints what it sees."""

import os

import labkit

print("DOTENV-READER-RAN mode:", labkit.current_mode())
labkit.client("ex01")
for name, value in os.environ.items():
    if "OPENAI" in name or value.startswith("sk-"):
        print("found in os.environ after labkit.client():", name, value)
