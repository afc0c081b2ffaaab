"""Exercise 05, another style: tenacity for the retries, asyncio.TaskGroup for the tasks, the lookup-table router."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ParsedChatCompletion
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from labkit.course.ex05 import DEFAULT_QUEUE, ROUTES, Classification, Queue, request_for, tokens_for
from labkit.ratelimit import RateLimiter


def route(c: Classification) -> Queue:
    for field, value, queue in ROUTES:
        if getattr(c, field) == value:
            return queue
    return DEFAULT_QUEUE


async def classify(client: AsyncOpenAI, email: dict[str, Any]) -> ParsedChatCompletion[Classification]:
    completion = await client.chat.completions.parse(**request_for(email))
    if completion.choices[0].message.parsed is None:
        raise ValueError(completion.choices[0].message.refusal or "refused")
    return completion


def is_retryable(err: BaseException) -> bool:
    if isinstance(err, openai.APIStatusError):
        return err.status_code in (408, 409, 429) or 500 <= err.status_code
    return isinstance(err, openai.APIConnectionError)


def _records(raw: bytes) -> Iterator[Any]:
    """Every line that parses (a crash can cut one short); JSON Lines end with b"\\n" only."""
    for chunk in raw.split(b"\n"):
        with contextlib.suppress(ValueError):
            yield json.loads(chunk)


def finished_ids(out_path: str | Path) -> set[str]:
    try:
        raw = Path(out_path).read_bytes()
    except FileNotFoundError:
        return set()
    return {r["id"] for r in _records(raw) if isinstance(r, dict) and r.get("status") == "ok"}


_backoff = wait_random_exponential(multiplier=0.5, max=20)


def wait_for_server(state: RetryCallState) -> float:
    """Retry-After (ms, then s) when the server sent it, else jittered exponential backoff."""
    err = state.outcome.exception() if state.outcome else None
    headers = getattr(getattr(err, "response", None), "headers", None) or {}
    if "retry-after-ms" in headers:
        return float(headers["retry-after-ms"]) / 1000
    if "retry-after" in headers:
        return float(headers["retry-after"])
    return _backoff(state)


async def one_email(client: AsyncOpenAI, email: dict[str, Any], limiter: RateLimiter, max_attempts: int) -> dict[str, Any]:
    tries = 0
    try:
        async for attempt in AsyncRetrying(stop=stop_after_attempt(max_attempts), wait=wait_for_server,
                                           retry=retry_if_exception(is_retryable), reraise=True):
            with attempt:
                tries = attempt.retry_state.attempt_number
                await limiter.acquire(tokens_for(email))
                completion = await classify(client, email)
    except Exception as err:  # noqa: BLE001
        return {"id": email["id"], "status": "error", "error": repr(err)[:200], "attempts": tries}
    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    usage = completion.usage
    return {"id": email["id"], "status": "ok", **parsed.model_dump(mode="json"), "model": completion.model,
            "prompt_tokens": usage.prompt_tokens if usage else 0, "completion_tokens": usage.completion_tokens if usage else 0,
            "attempts": tries}


async def process_batch(
    client: AsyncOpenAI, emails: list[dict[str, Any]], out_path: str | Path, *, concurrency: int = 16, rpm: float = 5_000,
    tpm: float = 2_000_000, max_attempts: int = 4, progress: bool = True,
) -> dict[str, int]:
    path = Path(out_path)
    done = finished_ids(path)
    todo = [e for e in emails if e["id"] not in done]
    counts = {"ok": 0, "failed": 0, "skipped": len(emails) - len(todo)}
    limiter = RateLimiter(rpm, tpm)
    slots = asyncio.Semaphore(concurrency)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size and not path.read_bytes().endswith(b"\n"):
            os.write(fd, b"\n")

        async def run(email: dict[str, Any]) -> None:
            async with slots:
                record = await one_email(client, email, limiter, max_attempts)
            os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))  # unbuffered: on disk at once
            counts["ok" if record["status"] == "ok" else "failed"] += 1

        async with asyncio.TaskGroup() as group:
            for email in todo:
                group.create_task(run(email))
    finally:
        os.close(fd)
    return counts
