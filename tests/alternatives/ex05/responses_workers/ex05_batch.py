"""Exercise 05, another style: the Responses API, a class, and a fixed pool of worker tasks on a queue.

Concurrency comes from the number of workers (no semaphore); lines are written ASCII-escaped.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.responses import ParsedResponse

from labkit.course.ex05 import CONTRACT, Classification, Queue, Sentiment, Urgency, responses_request_for, tokens_for
from labkit.ratelimit import RateLimiter


def route(c: Classification) -> Queue:
    """Critical to a human, negative to senior support, the rest to the standard queue."""
    match (c.urgency, c.sentiment):
        case (Urgency.CRITICAL, _):
            return Queue.HUMAN
        case (_, Sentiment.NEGATIVE):
            return Queue.SENIOR
        case _:
            return Queue.STANDARD


async def classify(client: AsyncOpenAI, email: dict[str, Any]) -> ParsedResponse[Classification]:
    """One Responses API request with Structured Outputs."""
    response = await client.responses.parse(**responses_request_for(email))
    if response.output_parsed is None:
        raise RuntimeError(f"no classification for {email['id']}")
    return response


def is_retryable(err: BaseException) -> bool:
    if isinstance(err, openai.APIConnectionError):
        return True
    return isinstance(err, openai.APIStatusError) and (err.status_code in CONTRACT.retry_statuses or err.status_code >= 500)


def finished_ids(out_path: str | Path) -> set[str]:
    path = Path(out_path)
    if not path.is_file():
        return set()
    done: set[str] = set()
    with path.open(encoding="utf-8", newline="\n") as f:
        for line in f:  # file iteration splits at "\n" only
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict) and item.get("status") == "ok":
                done.add(str(item["id"]))
    return done


def server_wait(err: BaseException) -> float | None:
    response = getattr(err, "response", None)
    if response is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None


class BatchProcessor:
    """Workers take emails from a queue; each email's attempts stay with one worker."""

    def __init__(self, client: AsyncOpenAI, out_path: Path, *, concurrency: int, rpm: float, tpm: float, max_attempts: int) -> None:
        self.client = client
        self.out_path = out_path
        self.workers = concurrency
        self.limiter = RateLimiter(rpm, tpm)
        self.max_attempts = max_attempts
        self.counts = {"ok": 0, "failed": 0, "skipped": 0}

    async def attempt_all(self, email: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            await self.limiter.acquire(tokens_for(email))
            try:
                response = await classify(self.client, email)
            except Exception as err:  # noqa: BLE001 - one email's failure stays with it
                if attempt >= self.max_attempts or not is_retryable(err):
                    return {"id": email["id"], "status": "error", "error": f"{type(err).__name__}: {err}"[:200], "attempts": attempt}
                wait = server_wait(err)
                await asyncio.sleep(wait if wait is not None else min(8.0, 0.25 * 2 ** attempt))
                continue
            parsed = response.output_parsed
            assert parsed is not None
            usage = response.usage
            return {"id": email["id"], "status": "ok", **parsed.model_dump(mode="json"), "model": response.model,
                    "prompt_tokens": usage.input_tokens if usage else 0, "completion_tokens": usage.output_tokens if usage else 0,
                    "attempts": attempt}

    async def worker(self, queue: asyncio.Queue[dict[str, Any]], sink: Any) -> None:
        while True:
            try:
                email = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            record = await self.attempt_all(email)
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            self.counts["ok" if record["status"] == "ok" else "failed"] += 1

    async def run(self, emails: list[dict[str, Any]]) -> dict[str, int]:
        done = finished_ids(self.out_path)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for email in emails:
            if email["id"] in done:
                self.counts["skipped"] += 1
            else:
                queue.put_nowait(email)
        if self.out_path.exists() and self.out_path.read_bytes()[-1:] not in (b"", b"\n"):
            with self.out_path.open("ab") as f:
                f.write(b"\n")
        with self.out_path.open("a", encoding="utf-8") as sink:
            await asyncio.gather(*(self.worker(queue, sink) for _ in range(self.workers)))
        return self.counts


async def process_batch(
    client: AsyncOpenAI, emails: list[dict[str, Any]], out_path: str | Path, *, concurrency: int = 16, rpm: float = 5_000,
    tpm: float = 2_000_000, max_attempts: int = 4, progress: bool = True,
) -> dict[str, int]:
    processor = BatchProcessor(client, Path(out_path), concurrency=concurrency, rpm=rpm, tpm=tpm, max_attempts=max_attempts)
    return await processor.run(emails)
