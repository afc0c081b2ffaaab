"""Exercise 05, another style: the Responses API; a hand-written async retry decorator
(functools.wraps) that reads the Retry-After headers itself and meters every attempt; routing by a
list of predicates; the results file read as bytes and split on b"\\n"; records streamed out of an
async generator fed by an asyncio.Queue; lines written with print(..., flush=True)."""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ParsedChatCompletion
from openai.types.responses import ParsedResponse

from labkit.course.ex05 import Classification, Queue, Sentiment, Urgency, responses_request_for, tokens_for
from labkit.ratelimit import RateLimiter

Parsed = ParsedChatCompletion[Classification] | ParsedResponse[Classification]

RETRY_STATUSES = frozenset({408, 409, 429})


def parsed_of(result: Parsed) -> Classification | None:
    if isinstance(result, ParsedResponse):
        return result.output_parsed
    return result.choices[0].message.parsed


def record_ok(email: dict[str, Any], result: Parsed, attempts: int) -> dict[str, Any]:
    parsed = parsed_of(result)
    assert parsed is not None
    if isinstance(result, ParsedResponse):
        tokens = (result.usage.input_tokens, result.usage.output_tokens) if result.usage else (0, 0)
    else:
        tokens = (result.usage.prompt_tokens, result.usage.completion_tokens) if result.usage else (0, 0)
    return {
        "id": email["id"], "status": "ok", **parsed.model_dump(mode="json"),
        "model": result.model, "prompt_tokens": tokens[0], "completion_tokens": tokens[1],
        "attempts": attempts,
    }


def record_error(email: dict[str, Any], err: BaseException, attempts: int) -> dict[str, Any]:
    return {"id": email["id"], "status": "error", "error": f"{type(err).__name__}: {str(err)[:200]}", "attempts": attempts}


RULES: list[tuple[Callable[[Classification], bool], Queue]] = [
    (lambda c: c.urgency is Urgency.CRITICAL, Queue.HUMAN),
    (lambda c: c.sentiment is Sentiment.NEGATIVE, Queue.SENIOR),
]


def route(c: Classification) -> Queue:
    for matches, queue in RULES:
        if matches(c):
            return queue
    return Queue.STANDARD


async def classify(client: AsyncOpenAI, email: dict[str, Any]) -> Parsed:
    response = await client.responses.parse(**responses_request_for(email))
    if response.output_parsed is None:
        raise ValueError(f"refused: {email['id']}")
    return response


def is_retryable(err: BaseException) -> bool:
    if isinstance(err, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    status = getattr(err, "status_code", None) if isinstance(err, openai.APIStatusError) else None
    return status is not None and (status in RETRY_STATUSES or 500 <= status)


def finished_ids(out_path: str | Path) -> set[str]:
    path = Path(out_path)
    if not path.is_file():
        return set()
    ids = set()
    for raw in path.read_bytes().split(b"\n"):
        try:
            item = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if type(item) is dict and item.get("status") == "ok":
            ids.add(item["id"])
    return ids


def server_wait(err: BaseException) -> float | None:
    """The server's Retry-After in seconds, if it sent one."""
    response = getattr(err, "response", None)
    headers = response.headers if response is not None else {}
    for name, to_seconds in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * to_seconds
            except ValueError:
                return None
    return None


class Failed(Exception):
    def __init__(self, err: BaseException, attempts: int) -> None:
        super().__init__(str(err))
        self.err, self.attempts = err, attempts


def retrying(max_attempts: int, before_each: Callable[[dict[str, Any]], Awaitable[None]]):  # type: ignore[no-untyped-def]
    """Call the wrapped coroutine up to max_attempts times; returns (result, attempts) or raises Failed."""

    def wrap(fn: Callable[[AsyncOpenAI, dict[str, Any]], Awaitable[Parsed]]):  # type: ignore[no-untyped-def]
        @functools.wraps(fn)
        async def wrapper(client: AsyncOpenAI, email: dict[str, Any]) -> tuple[Parsed, int]:
            n = 0
            while True:
                n += 1
                await before_each(email)
                try:
                    return await fn(client, email), n
                except Exception as err:
                    if n >= max_attempts or not is_retryable(err):
                        raise Failed(err, n) from err
                    wait = server_wait(err)
                    await asyncio.sleep(wait if wait is not None else random.uniform(0, min(20.0, 0.5 * 2 ** (n - 1))))

        return wrapper

    return wrap


async def process_batch(
    client: AsyncOpenAI,
    emails: list[dict[str, Any]],
    out_path: str | Path,
    *,
    concurrency: int = 16,
    rpm: float = 5_000,
    tpm: float = 2_000_000,
    max_attempts: int = 4,
    progress: bool = True,
) -> dict[str, int]:
    path = Path(out_path)
    done = finished_ids(path)
    todo = [e for e in emails if e["id"] not in done]
    limiter = RateLimiter(rpm, tpm)
    gate = asyncio.Semaphore(concurrency)

    async def meter(email: dict[str, Any]) -> None:
        await limiter.acquire(tokens_for(email))

    send = retrying(max_attempts, meter)(classify)

    async def records() -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def one(email: dict[str, Any]) -> None:
            async with gate:
                try:
                    result, n = await send(client, email)
                    record = record_ok(email, result, n)
                except Failed as failed:
                    record = record_error(email, failed.err, failed.attempts)
            await queue.put(record)

        tasks = [asyncio.ensure_future(one(e)) for e in todo]
        try:
            for _ in tasks:
                yield await queue.get()
        finally:
            for t in tasks:
                t.cancel()

    tail = b""
    if path.exists():
        with path.open("rb") as f:
            f.seek(0, 2)
            if f.tell():
                f.seek(-1, 2)
                tail = f.read(1)
    ok = failed = 0
    with path.open("a", encoding="utf-8", newline="\n") as sink:
        if tail and tail != b"\n":
            print(file=sink, flush=True)
        async for record in records():
            print(json.dumps(record, ensure_ascii=False), file=sink, flush=True)
            if record["status"] == "ok":
                ok += 1
            else:
                failed += 1
    return {"ok": ok, "failed": failed, "skipped": len(emails) - len(todo)}
