"""Exercise 05: classify and route 1,000 customer emails, fast and within limits.

Three designs live here. ``process_sequential`` and ``process_lesson_pool`` (the lesson's
thread pool with a sleep after each finished future) are given, for comparison. You write
``process_batch``: ``AsyncOpenAI`` with a concurrency limit, a rate limiter, per-item error
isolation, retries of retryable failures only, and results appended to a JSONL file so that a
crashed run resumes where it stopped. Edit the TODOs below (everything above "yours" is given),
then run `labkit check ex05` or the last cell of notebooks/05_batch_and_async.ipynb.

The emails, the ``Classification`` schema, the queues and the requests are the lesson's, in
labkit/course/ex05.py: ``request_for`` (Chat Completions) and ``responses_request_for`` (the
Responses API) build the same classification, on the fast model at reasoning effort "none";
the recordings were made from exactly these requests, and you may use either API. That
module's docstring states the contract the checks test (``CONTRACT``: which failures are
retried, how the rate limit is measured, what the results file holds).

The checks run your code on a virtual clock (labkit.ratelimit.VirtualTimeLoop): keep to
``asyncio.sleep`` for waiting and to ``labkit.ratelimit.RateLimiter`` (or a limiter of your own
that reads ``asyncio.get_running_loop().time()``), never ``time.sleep`` or ``time.time()``.
"""


import asyncio
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ParsedChatCompletion
from openai.types.responses import ParsedResponse
from tqdm.auto import tqdm

from labkit.course.ex05 import (  # noqa: F401 - the lesson's schema, queues, requests and contract, given
    CONTRACT,
    MAX_OUTPUT,
    MODEL,
    SYSTEM,
    Category,
    Classification,
    Queue,
    Sentiment,
    Urgency,
    build_messages,
    load_emails,
    request_for,
    responses_request_for,
    tokens_for,
)
from labkit.ratelimit import RateLimiter

#: What classify() returns: a parsed chat completion or a parsed response (either API).
Parsed = ParsedChatCompletion[Classification] | ParsedResponse[Classification]


# --------------------------------------------------------------------------- given


def parsed_of(result: Parsed) -> Classification | None:
    """The Classification in a parse() result of either API (None if the model refused)."""
    if isinstance(result, ParsedResponse):
        return result.output_parsed
    return result.choices[0].message.parsed


def record_ok(email: dict[str, Any], result: Parsed, attempts: int) -> dict[str, Any]:
    """One JSONL line for a classified email (from a parsed chat completion or a parsed response)."""
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
    """One JSONL line for an email that could not be classified."""
    return {"id": email["id"], "status": "error", "error": f"{type(err).__name__}: {str(err)[:200]}", "attempts": attempts}


def retry_delay(err: BaseException, attempt: int, *, base: float = 0.5, cap: float = 20.0) -> float:
    """Seconds to wait before retry number ``attempt``: the server's Retry-After if it sent one,
    else exponential backoff with full jitter."""
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


def process_sequential(client: OpenAI, emails: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Design 1: one request at a time."""
    out = []
    for email in emails:
        try:
            out.append(record_ok(email, client.chat.completions.parse(**request_for(email)), 1))
        except Exception as err:  # noqa: BLE001 - one bad email must not stop the rest
            out.append(record_error(email, err, 1))
    return out


def process_lesson_pool(client: OpenAI, emails: list[dict[str, Any]], max_workers: int = 5, pause: float = 0.1) -> list[dict[str, Any]]:
    """Design 2, the lesson's: submit every email to a thread pool, then sleep ``pause`` after each
    *finished* future. The sleep runs in the collecting loop, after the work is already done: it
    slows the collection of results, not the rate at which requests are sent."""
    out = []
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = {pool.submit(client.chat.completions.parse, **request_for(email)): email for email in emails}
        for future in as_completed(futures):
            email = futures[future]
            try:
                out.append(record_ok(email, future.result(), 1))
            except Exception as err:  # noqa: BLE001
                out.append(record_error(email, err, 1))
            time.sleep(pause)
    return out


# --------------------------------------------------------------------------- yours


def route(c: Classification) -> Queue:
    """Critical emails go to a human, negative ones to senior support, the rest to the standard queue."""
    ### BEGIN SOLUTION: route a classification to its queue
    ### TODO: return Queue.HUMAN, Queue.SENIOR or Queue.STANDARD. Order matters: a critical,
    ### negative email is critical first.
    if c.urgency == Urgency.CRITICAL:
        return Queue.HUMAN
    if c.sentiment == Sentiment.NEGATIVE:
        return Queue.SENIOR
    return Queue.STANDARD
    ### END SOLUTION


async def classify(client: AsyncOpenAI, email: dict[str, Any]) -> Parsed:
    """Send one Structured Outputs request for ``email``, through either API; return the parsed result."""
    ### BEGIN SOLUTION: send the parse request
    ### TODO: await client.chat.completions.parse(**request_for(email)) and return it (or, with
    ### the Responses API, client.responses.parse(**responses_request_for(email))). If
    ### parsed_of(result) is None (a refusal), raise an exception that says so.
    completion = await client.chat.completions.parse(**request_for(email))
    if parsed_of(completion) is None:
        raise ValueError(f"the model refused to classify {email['id']}")
    return completion
    ### END SOLUTION


def is_retryable(err: BaseException) -> bool:
    """Worth another try: rate limits, timeouts, dropped connections, conflicts and server errors."""
    ### BEGIN SOLUTION: decide which failures are worth retrying
    ### TODO: True for openai.APIConnectionError (timeouts included) and for openai.APIStatusError
    ### with status 408, 409, 429 or >= 500 (CONTRACT.retry_statuses); False for everything else:
    ### 400, 401, 403, 404, 422 and any other 4xx, and exceptions that are not API errors (an
    ### answer cut off at the output limit, a refusal, a validation error...).
    if isinstance(err, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(err, openai.APIStatusError):
        return err.status_code in (408, 409, 429) or err.status_code >= 500
    return False
    ### END SOLUTION


def finished_ids(out_path: str | Path) -> set[str]:
    """Ids with an ``ok`` line in the results file (missing file: none). A half-written last line is skipped."""
    ### BEGIN SOLUTION: read which emails are already done
    ### TODO: read the JSONL file line by line (lines end with "\n" only: str.splitlines() also
    ### splits on U+2028, which json.dumps(..., ensure_ascii=False) leaves raw inside a string);
    ### collect item["id"] where item["status"] == "ok"; skip lines that are not JSON objects
    ### (a crash can cut a line short).
    path = Path(out_path)
    if not path.exists():
        return set()
    done = set()
    for line in path.read_text(encoding="utf-8").split(CONTRACT.line_separator):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("status") == "ok":
            done.add(item["id"])
    return done
    ### END SOLUTION


### BEGIN SOLUTION
async def _attempts(client: AsyncOpenAI, email: dict[str, Any], limiter: RateLimiter, max_attempts: int) -> dict[str, Any]:
    tokens = tokens_for(email)
    attempt = 0
    while True:
        attempt += 1
        await limiter.acquire(tokens)
        try:
            completion = await classify(client, email)
        except Exception as err:  # noqa: BLE001 - isolate every failure to its own item
            if attempt >= max_attempts or not is_retryable(err):
                return record_error(email, err, attempt)
            await asyncio.sleep(retry_delay(err, attempt))
        else:
            return record_ok(email, completion, attempt)
### END SOLUTION


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
    """Classify every email not yet finished in ``out_path``, appending one JSON line per email as it completes.

    At most ``concurrency`` requests are in flight, every attempt (retries too) waits for the rate
    limiter, retryable failures are retried up to ``max_attempts`` attempts in all, and any other
    failure becomes an ``error`` line for that email alone. Returns counts: ``ok`` and ``failed``
    (lines written by this run) and ``skipped`` (emails that already had an ``ok`` line).
    """
    ### BEGIN SOLUTION: write the async batch processor
    ### TODO, step by step:
    ### 1. skip the emails in finished_ids(out_path); if the file ends without a newline (a crash
    ###    cut the last line), write one before appending.
    ### 2. limiter = RateLimiter(rpm, tpm); gate = asyncio.Semaphore(concurrency).
    ### 3. for each email, inside `async with gate`: up to max_attempts attempts in all (the first
    ###    included), each one `await limiter.acquire(tokens_for(email))`, then `await classify(...)`;
    ###    on an exception retry only if is_retryable(err), after `await asyncio.sleep(retry_delay(err, attempt))`
    ###    (the server's Retry-After when it sent one); otherwise keep record_error(email, err, attempt).
    ###    Never let one email's exception escape.
    ### 4. append json.dumps(record_ok(...) or record_error(...)) + "\n" to out_path as each email
    ###    finishes, and flush, so a crash loses nothing that finished.
    ### 5. run all emails with asyncio.gather; update a tqdm bar (disable=not progress).
    path = Path(out_path)
    done = finished_ids(path)
    todo = [e for e in emails if e["id"] not in done]
    counts = {"ok": 0, "failed": 0, "skipped": len(emails) - len(todo)}
    limiter = RateLimiter(rpm, tpm)
    gate = asyncio.Semaphore(concurrency)
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        with path.open("a", encoding="utf-8") as f:  # a crash cut the last line short: start a fresh one
            f.write("\n")
    with path.open("a", encoding="utf-8") as sink, tqdm(
        total=len(emails), initial=counts["skipped"], disable=not progress, desc="emails", unit="email"
    ) as bar:

        async def one(email: dict[str, Any]) -> None:
            async with gate:
                record = await _attempts(client, email, limiter, max_attempts)
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            counts["ok" if record["status"] == "ok" else "failed"] += 1
            bar.update()

        await asyncio.gather(*(one(e) for e in todo))
    return counts
    ### END SOLUTION
