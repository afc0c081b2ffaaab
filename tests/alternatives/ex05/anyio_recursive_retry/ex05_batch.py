"""Exercise 05, another style: anyio (a task group and a CapacityLimiter) on the asyncio loop, the
Responses API, retries by recursion, the results file written in binary and fsync'ed per line, and
routing as one expression on a tuple."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import anyio
import openai
from openai import AsyncOpenAI

from labkit.course.ex05 import Classification, Queue, Sentiment, Urgency, responses_request_for, tokens_for
from labkit.ratelimit import RateLimiter


def route(c: Classification) -> Queue:
    critical, negative = c.urgency is Urgency.CRITICAL, c.sentiment is Sentiment.NEGATIVE
    return {(True, True): Queue.HUMAN, (True, False): Queue.HUMAN, (False, True): Queue.SENIOR}.get((critical, negative), Queue.STANDARD)


async def classify(client: AsyncOpenAI, email: dict[str, Any]) -> Any:
    response = await client.responses.parse(**responses_request_for(email))
    if response.output_parsed is None:
        raise LookupError(f"no classification for {email['id']!r}: the model declined")
    return response


def is_retryable(err: BaseException) -> bool:
    if not isinstance(err, openai.APIError):
        return False
    status = getattr(err, "status_code", None)
    if status is None:
        return isinstance(err, openai.APIConnectionError)
    return status in (408, 409, 429) or 500 <= status <= 599


def finished_ids(out_path: str | Path) -> set[str]:
    path = Path(out_path)
    data = path.read_bytes() if path.is_file() else b""
    done = set()
    for raw in data.split(b"\n"):
        try:
            item = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(item, dict) and item.get("status") == "ok" and "id" in item:
            done.add(item["id"])
    return done


def wait_before_retry(err: BaseException, tries: int) -> float:
    headers = getattr(getattr(err, "response", None), "headers", None)
    if headers is not None:
        if (ms := headers.get("retry-after-ms")) is not None:
            return int(ms) / 1000
        if (s := headers.get("retry-after")) is not None and s.isdigit():
            return float(s)
    return random.uniform(0, 0.5 * 2**tries)


async def attempt(client: AsyncOpenAI, email: dict[str, Any], limiter: RateLimiter, n: int, last: int) -> dict[str, Any]:
    await limiter.acquire(tokens_for(email))
    try:
        response = await classify(client, email)
    except Exception as err:  # noqa: BLE001
        if n < last and is_retryable(err):
            await anyio.sleep(wait_before_retry(err, n))
            return await attempt(client, email, limiter, n + 1, last)
        return {"id": email["id"], "status": "error", "error": f"{type(err).__name__}: {str(err)[:200]}", "attempts": n}
    usage = response.usage
    return {"id": email["id"], "status": "ok", **response.output_parsed.model_dump(mode="json"), "model": response.model,
            "prompt_tokens": usage.input_tokens if usage else 0, "completion_tokens": usage.output_tokens if usage else 0,
            "attempts": n}


async def process_batch(
    client: AsyncOpenAI, emails: list[dict[str, Any]], out_path: str | Path, *, concurrency: int = 16, rpm: float = 5_000,
    tpm: float = 2_000_000, max_attempts: int = 4, progress: bool = True,
) -> dict[str, int]:
    path = Path(out_path)
    done = finished_ids(path)
    counts = {"ok": 0, "failed": 0, "skipped": sum(1 for e in emails if e["id"] in done)}
    limiter, slots = RateLimiter(rpm, tpm), anyio.CapacityLimiter(concurrency)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")

        async def one(email: dict[str, Any]) -> None:
            async with slots:
                record = await attempt(client, email, limiter, 1, max_attempts)
            os.write(fd, json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
            os.fsync(fd)
            counts[record["status"] if record["status"] == "ok" else "failed"] += 1

        async with anyio.create_task_group() as group:
            for email in emails:
                if email["id"] not in done:
                    group.start_soon(one, email)
    finally:
        os.close(fd)
    return counts
