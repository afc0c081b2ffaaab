"""Batch throughput over real HTTP: sequential vs the lesson's thread pool vs the async solution.

A ``labkit.serve`` process on 127.0.0.1 answers the 1,000 recorded classifications of
``cassettes/ex05.json`` after 200 ms +/- 50 ms and enforces a 7,200 requests-per-minute limit
with 429s, as the API does. Against it, in this process:

* the async solution (``solutions/ex05_batch.py``: AsyncOpenAI, concurrency 64, the same rate
  limit, results appended to a JSONL file) on all 1,000 emails;
* sequential requests on the first 20 emails, extrapolated to 1,000 (it would take ~200 s);
* the lesson's design (5 threads, ``sleep(0.1)`` after each finished future) on all 1,000.

The theoretical limit is ``min(concurrency / mean latency, rpm / 60)``: 120/s here. Python's
SDK costs a few ms of CPU per request, so one process tops out at a few hundred requests per
second; the limit is set well below that so the bench measures the designs, not the CPU.
Prints readable lines, then one JSON line last. Takes about two minutes, most of it the
lesson's design.
Usage: ``python bench/batch.py [--quick]`` (``--quick``: the lesson's design on 200 emails, extrapolated).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
os.environ.pop("OPENAI_API_KEY", None)
os.environ["LABKIT_ROOT"] = str(ROOT)

from labkit.checks import load_learner_module  # noqa: E402
from labkit.ratelimit import theoretical_rps  # noqa: E402

LATENCY, JITTER = 0.2, 0.05
RPM, TPM = 7_200, 10_000_000
CONCURRENCY = 64
SEQUENTIAL_N = 20
LESSON_WORKERS, LESSON_PAUSE = 5, 0.1


def start_server() -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "labkit.serve", "ex05", "--latency", str(LATENCY), "--jitter", str(JITTER),
           "--rpm", str(RPM), "--max-seconds", "300"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"labkit.serve did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1].strip()


def stats(url: str, reset: bool = False) -> dict[str, float]:
    base = url.rsplit("/v1", 1)[0]
    req = urllib.request.Request(f"{base}/labkit/{'reset' if reset else 'stats'}", method="POST" if reset else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def main(quick: bool = False) -> None:
    sol = load_learner_module(ROOT / "solutions" / "ex05_batch.py")
    emails = sol.load_emails()
    proc, url = start_server()
    try:
        sync = openai.OpenAI(api_key="bench-no-key", base_url=url, max_retries=0)
        sync.chat.completions.parse(**sol.request_for(emails[0]))  # warm up: connection, schema, tokenizer

        # 1. the async solution on all 1,000
        stats(url, reset=True)
        aclient = openai.AsyncOpenAI(api_key="bench-no-key", base_url=url, max_retries=0)
        out = Path(tempfile.mkdtemp()) / "results.jsonl"
        t = time.perf_counter()
        counts = asyncio.run(sol.process_batch(aclient, emails, out, concurrency=CONCURRENCY, rpm=RPM, tpm=TPM, progress=False))
        async_s = time.perf_counter() - t
        a_stats = stats(url)
        async_rps = len(emails) / async_s
        limit = theoretical_rps(CONCURRENCY, LATENCY, RPM)
        print(f"async solution : {len(emails)} emails in {async_s:6.2f} s = {async_rps:6.1f}/s "
              f"({counts['ok']} ok, {counts['failed']} failed; server saw peak {a_stats['peak_in_flight']} in flight, "
              f"{a_stats['rate_limited']} x 429)")

        # 2. sequential, on a subset
        stats(url, reset=True)
        t = time.perf_counter()
        seq = sol.process_sequential(sync, emails[:SEQUENTIAL_N])
        seq_s = time.perf_counter() - t
        seq_rps = SEQUENTIAL_N / seq_s
        print(f"sequential     : {SEQUENTIAL_N} emails in {seq_s:6.2f} s = {seq_rps:6.1f}/s "
              f"({sum(r['status'] == 'ok' for r in seq)} ok; 1,000 would take ~{len(emails) / seq_rps:.0f} s, extrapolated)")

        # 3. the lesson's thread pool with sleep(0.1) after each finished future
        n_lesson = 200 if quick else len(emails)
        stats(url, reset=True)
        t = time.perf_counter()
        pool = sol.process_lesson_pool(sync, emails[:n_lesson], max_workers=LESSON_WORKERS, pause=LESSON_PAUSE)
        lesson_s = time.perf_counter() - t
        l_stats = stats(url)
        lesson_rps = n_lesson / lesson_s
        sent_rps = l_stats["requests"] / max(l_stats["last_at"] - l_stats["first_at"], 1e-9)
        print(f"lesson's pool  : {n_lesson} emails in {lesson_s:6.2f} s = {lesson_rps:6.1f}/s "
              f"({sum(r['status'] == 'ok' for r in pool)} ok{', extrapolated from 200' if quick else ''}); "
              f"its requests went out at {sent_rps:.0f}/s, not the 10/s its sleep(0.1) suggests")
    finally:
        proc.terminate()
        proc.wait(10)

    share = async_rps / limit
    print(f"theoretical    : min({CONCURRENCY} / {LATENCY * 1000:.0f} ms, {RPM:,} rpm / 60) = {limit:.0f}/s; "
          f"async reaches {share:.0%} of it and {async_rps / lesson_rps:.1f}x the lesson's design")
    print(json.dumps({
        "sequential_rps": round(seq_rps, 1), "lesson_rps": round(lesson_rps, 1), "async_rps": round(async_rps, 1),
        "theoretical_rps": round(limit, 1), "async_share_of_limit": round(share, 3),
        "async_vs_lesson": round(async_rps / lesson_rps, 2), "emails": len(emails),
        "sequential_measured_on": SEQUENTIAL_N, "lesson_measured_on": n_lesson,
        "async_429s": a_stats["rate_limited"], "lesson_sent_rps": round(sent_rps, 1),
        "latency_s": LATENCY, "jitter_s": JITTER, "concurrency": CONCURRENCY, "rpm": RPM,
    }))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
