"""Exercise 05, another style: a limiter of its own (one-second buckets, as the API enforces), results
consumed with asyncio.as_completed, and the classification at reasoning effort "low" (no temperature:
only effort "none" accepts it)."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI

from labkit.course.ex05 import Classification, Queue, Sentiment, Urgency, request_for, tokens_for


def route(c: Classification) -> Queue:
    return Queue.HUMAN if c.urgency is Urgency.CRITICAL else Queue.SENIOR if c.sentiment is Sentiment.NEGATIVE else Queue.STANDARD


async def classify(client: AsyncOpenAI, email: dict[str, Any]) -> Any:
    kwargs = {k: v for k, v in request_for(email).items() if k != "temperature"}
    completion = await client.chat.completions.parse(**{**kwargs, "reasoning_effort": "low"})
    if completion.choices[0].message.parsed is None:
        raise ValueError("refusal")
    return completion


def is_retryable(err: BaseException) -> bool:
    status = getattr(err, "status_code", None) if isinstance(err, openai.APIStatusError) else None
    return isinstance(err, openai.APIConnectionError) or status in (408, 409, 429) or (status is not None and status >= 500)


def finished_ids(out_path: str | Path) -> set[str]:
    decoder, found = json.JSONDecoder(), set()
    text = Path(out_path).read_text(encoding="utf-8") if Path(out_path).exists() else ""
    for line in filter(str.strip, text.split("\n")):
        try:
            item, end = decoder.raw_decode(line)
        except ValueError:
            continue
        if end == len(line.rstrip()) and isinstance(item, dict) and item.get("status") == "ok":
            found.add(item["id"])
    return found


class Bucket:
    """``rate`` per second, holding at most one second's worth; reads the event loop's clock."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60
        self.capacity = max(self.rate, 1.0)
        self.level = self.capacity
        self.at: float | None = None

    def wait(self, amount: float, now: float) -> float:
        if self.at is not None:
            self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        need = min(amount, self.capacity)
        return max(0.0, (need - self.level) / self.rate)


class Limiter:
    def __init__(self, rpm: float, tpm: float) -> None:
        self.buckets = [(Bucket(rpm), False), (Bucket(tpm), True)]
        self.lock = asyncio.Lock()

    async def take(self, tokens: int) -> None:
        async with self.lock:
            loop = asyncio.get_running_loop()
            while (delay := max(b.wait(tokens if weighted else 1, loop.time()) for b, weighted in self.buckets)) > 1e-9:
                await asyncio.sleep(delay)
            for b, weighted in self.buckets:
                b.level -= tokens if weighted else 1


def delay_for(err: BaseException, attempt: int) -> float:
    headers = getattr(getattr(err, "response", None), "headers", {}) or {}
    if headers.get("retry-after-ms"):
        return float(headers["retry-after-ms"]) / 1000
    if headers.get("retry-after"):
        return float(headers["retry-after"])
    return random.uniform(0, min(10.0, 0.5 * 2**attempt))


async def process_batch(
    client: AsyncOpenAI, emails: list[dict[str, Any]], out_path: str | Path, *, concurrency: int = 16, rpm: float = 5_000,
    tpm: float = 2_000_000, max_attempts: int = 4, progress: bool = True,
) -> dict[str, int]:
    path = Path(out_path)
    done = finished_ids(path)
    todo = [e for e in emails if e["id"] not in done]
    limiter, gate = Limiter(rpm, tpm), asyncio.BoundedSemaphore(concurrency)

    async def attempts(email: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            for n in range(1, max_attempts + 1):
                await limiter.take(tokens_for(email))
                try:
                    c = await classify(client, email)
                except Exception as err:  # noqa: BLE001
                    if n == max_attempts or not is_retryable(err):
                        return {"id": email["id"], "status": "error", "error": str(err)[:200], "attempts": n}
                    await asyncio.sleep(delay_for(err, n))
                    continue
                parsed = c.choices[0].message.parsed
                return {"id": email["id"], "status": "ok", **parsed.model_dump(mode="json"), "model": c.model,
                        "prompt_tokens": c.usage.prompt_tokens, "completion_tokens": c.usage.completion_tokens, "attempts": n}
        raise AssertionError("max_attempts must be at least 1")

    ok = failed = 0
    tail = path.read_bytes()[-1:] if path.exists() else b""
    with path.open("a", encoding="utf-8") as out:
        if tail not in (b"", b"\n"):
            out.write("\n")
        for finished in asyncio.as_completed([attempts(e) for e in todo]):
            record = await finished
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            ok, failed = ok + (record["status"] == "ok"), failed + (record["status"] != "ok")
    return {"ok": ok, "failed": failed, "skipped": len(emails) - len(todo)}
