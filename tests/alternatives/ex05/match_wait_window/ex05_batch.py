"""Exercise 05, another style: match statements for routing and retryability, retries as a for/else
loop, concurrency as a sliding window of tasks kept full with asyncio.wait(FIRST_COMPLETED) (no
semaphore), one writer (the coordinating coroutine writes each line as its task completes), the
results file read by iterating over the open file, and the counts kept in a dataclass."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ParsedChatCompletion
from openai.types.responses import ParsedResponse

from labkit.course.ex05 import CONTRACT, Classification, Queue, Sentiment, Urgency, request_for, tokens_for
from labkit.ratelimit import RateLimiter

Parsed = ParsedChatCompletion[Classification] | ParsedResponse[Classification]


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


def retry_delay(err: BaseException, attempt: int, *, base: float = 0.5, cap: float = 20.0) -> float:
    response = getattr(err, "response", None)
    if response is not None:
        headers = response.headers
        try:
            if "retry-after-ms" in headers:
                return float(headers["retry-after-ms"]) / 1000
            if "retry-after" in headers:
                return float(headers["retry-after"])
        except ValueError:
            pass
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def route(c: Classification) -> Queue:
    match (c.urgency, c.sentiment):
        case (Urgency.CRITICAL, _):
            return Queue.HUMAN
        case (_, Sentiment.NEGATIVE):
            return Queue.SENIOR
        case _:
            return Queue.STANDARD


async def classify(client: AsyncOpenAI, email: dict[str, Any]) -> Parsed:
    result = await client.chat.completions.parse(**request_for(email))
    if result.choices[0].message.parsed is None:
        raise RuntimeError(f"no classification for {email['id']}: {result.choices[0].message.refusal}")
    return result


def is_retryable(err: BaseException) -> bool:
    match err:
        case openai.APIConnectionError():
            return True
        case openai.APIStatusError(status_code=status) if status >= 500 or status in (408, 409, 429):
            return True
        case _:
            return False


def finished_ids(out_path: str | Path) -> set[str]:
    done: set[str] = set()
    try:
        with open(out_path, encoding="utf-8") as f:  # iterating a text file splits at "\n" only
            for line in f:
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue
                match item:
                    case {"status": "ok", "id": str(email_id)}:
                        done.add(email_id)
    except FileNotFoundError:
        pass
    return done


@dataclass
class Counts:
    ok: int = 0
    failed: int = 0
    skipped: int = 0


async def _one(client: AsyncOpenAI, email: dict[str, Any], limiter: RateLimiter, max_attempts: int) -> dict[str, Any]:
    for attempt in range(1, max_attempts + 1):
        await limiter.acquire(tokens_for(email))
        try:
            return record_ok(email, await classify(client, email), attempt)
        except Exception as err:  # noqa: BLE001
            if not is_retryable(err) or attempt == max_attempts:
                return record_error(email, err, attempt)
            await asyncio.sleep(retry_delay(err, attempt))
    else:
        raise ValueError("max_attempts must be at least 1")


async def process_batch(
    client: AsyncOpenAI,
    emails: list[dict[str, Any]],
    out_path: str | Path,
    *,
    concurrency: int = 16,
    rpm: float = 5_000,
    tpm: float = 2_000_000,
    max_attempts: int = CONTRACT.max_attempts,
    progress: bool = True,
) -> dict[str, int]:
    path = Path(out_path)
    done = finished_ids(path)
    waiting = iter([e for e in emails if e["id"] not in done])
    counts = Counts(skipped=sum(1 for e in emails if e["id"] in done))
    limiter = RateLimiter(rpm, tpm)
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as f:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")
    with open(path, "a", encoding="utf-8") as sink:
        running: set[asyncio.Task[dict[str, Any]]] = set()

        def refill() -> None:
            while len(running) < concurrency:
                email = next(waiting, None)
                if email is None:
                    return
                running.add(asyncio.create_task(_one(client, email, limiter, max_attempts)))

        refill()
        while running:
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            running -= finished
            refill()
            for task in finished:
                record = task.result()
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()
                if record["status"] == "ok":
                    counts.ok += 1
                else:
                    counts.failed += 1
    return asdict(counts)
