"""Exercise 05, another style: a pacing limiter of its own (each request and each token is given an
evenly spaced start time: no bursts at all), the concurrency slot held per attempt (released while
backing off), one writer task fed by an asyncio.Queue, the SDK's own retries switched off, and lines
written ASCII-escaped. Returns one more count than asked for ("total")."""

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
    if c.urgency == Urgency.CRITICAL:
        return Queue.HUMAN
    return {Sentiment.NEGATIVE: Queue.SENIOR}.get(c.sentiment, Queue.STANDARD)


async def classify(client: AsyncOpenAI, email: dict[str, Any]) -> Any:
    completion = await client.with_options(max_retries=0).chat.completions.parse(**request_for(email))
    message = completion.choices[0].message
    if message.parsed is None:
        raise RuntimeError(f"refused: {message.refusal}")
    return completion


RETRY_STATUS = frozenset({408, 409, 429})


def is_retryable(err: BaseException) -> bool:
    match err:
        case openai.APIConnectionError():
            return True
        case openai.APIStatusError(status_code=code):
            return code in RETRY_STATUS or code >= 500
        case _:
            return False


def finished_ids(out_path: str | Path) -> set[str]:
    try:
        f = open(out_path, encoding="utf-8", newline="")  # newline="": lines end at \n, \r or \r\n; never U+2028
    except FileNotFoundError:
        return set()
    ids: set[str] = set()
    with f:
        while line := f.readline():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if type(record) is dict and record.get("status") == "ok":
                ids.add(record["id"])
    return ids


class Pacer:
    """Requests and tokens released at an even pace: the next start is at least 1/rate after the last."""

    def __init__(self, rpm: float, tpm: float) -> None:
        self.request_gap = 60.0 / rpm
        self.token_gap = 60.0 / tpm
        self.next_start = 0.0
        self.lock = asyncio.Lock()

    async def wait(self, tokens: int) -> None:
        async with self.lock:
            now = asyncio.get_running_loop().time()
            start = max(now, self.next_start)
            self.next_start = start + max(self.request_gap, tokens * self.token_gap)
        if start > now:
            await asyncio.sleep(start - now)


def backoff(err: BaseException, attempt: int) -> float:
    response = getattr(err, "response", None)
    if response is not None:
        for header, unit in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
            raw = response.headers.get(header)
            if raw:
                try:
                    return float(raw) * unit
                except ValueError:
                    break
    return random.random() * min(16.0, 2.0 ** (attempt - 2))


async def process_batch(
    client: AsyncOpenAI, emails: list[dict[str, Any]], out_path: str | Path, *, concurrency: int = 16, rpm: float = 5_000,
    tpm: float = 2_000_000, max_attempts: int = 4, progress: bool = True,
) -> dict[str, int]:
    path = Path(out_path)
    already = finished_ids(path)
    pending = [e for e in emails if e["id"] not in already]
    pacer, slots = Pacer(rpm, tpm), asyncio.Semaphore(concurrency)
    results: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    tally = {"ok": 0, "failed": 0, "skipped": len(emails) - len(pending), "total": len(emails)}

    async def handle(email: dict[str, Any]) -> None:
        attempt = 1
        while True:
            await pacer.wait(tokens_for(email))
            try:
                async with slots:
                    completion = await classify(client, email)
            except Exception as err:  # noqa: BLE001 - this email's problem only
                if is_retryable(err) and attempt < max_attempts:
                    await asyncio.sleep(backoff(err, attempt))
                    attempt += 1
                    continue
                await results.put({"id": email["id"], "status": "error", "error": f"{type(err).__name__}: {err}"[:200],
                                   "attempts": attempt})
                return
            parsed = completion.choices[0].message.parsed
            usage = completion.usage
            await results.put({"id": email["id"], "status": "ok", **parsed.model_dump(mode="json"), "model": completion.model,
                               "prompt_tokens": getattr(usage, "prompt_tokens", 0),
                               "completion_tokens": getattr(usage, "completion_tokens", 0), "attempts": attempt})
            return

    async def writer() -> None:
        with path.open("a", encoding="utf-8") as out:
            if out.tell() and path.read_bytes()[-1:] != b"\n":
                out.write("\n")
            while (record := await results.get()) is not None:
                out.write(json.dumps(record) + "\n")
                out.flush()
                tally["ok" if record["status"] == "ok" else "failed"] += 1

    writing = asyncio.create_task(writer())
    await asyncio.gather(*map(handle, pending))
    await results.put(None)
    await writing
    return tally
