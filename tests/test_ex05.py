"""Exercise 05's data, recordings, rate limiter, virtual clock and local server."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import openai
import pytest

from labkit.checks import load_learner_module
from labkit.checks.ex05 import emails, recorded_answers
from labkit.course import ex05 as course
from labkit.course.ex05 import Category, Sentiment, Urgency, email_generator, email_text, request_for
from labkit.faults import Latency
from labkit.paths import exercises_dir, solutions_dir
from labkit.ratelimit import Crash, RateLimiter, TokenBucket, lab_client, run_virtual, theoretical_rps, window_peak
from labkit.serve import serving

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sol():
    return load_learner_module(solutions_dir() / "ex05_batch.py")


# --------------------------------------------------------------------------- data and recordings


def test_data_file_is_what_the_seeded_generator_makes() -> None:
    gen = email_generator()
    assert gen.data_lines(gen.generate()) == (ROOT / "data" / course.EMAILS_FILE).read_text(encoding="utf-8")


def test_data_has_labels_and_every_hard_case() -> None:
    rows = emails()
    assert len(rows) == 1000 and len({r["id"] for r in rows}) == 1000
    assert len({email_text(r) for r in rows}) == 1000, "two emails alike would make the same request twice"
    for r in rows:
        assert r["label"]["sentiment"] in set(Sentiment)
        assert r["label"]["urgency"] in set(Urgency)
        assert r["label"]["category"] in set(Category)
    kinds = Counter(r["hard_case"] for r in rows)
    assert {"empty", "long", "non-english", "injection"} <= set(kinds)
    assert any(r["body"] == "" for r in rows) and max(len(r["body"]) for r in rows) > 8000
    assert Counter(r["label"]["category"] for r in rows).most_common()[-1][1] > 100


def test_recordings_disagree_honestly_and_are_marked_authored() -> None:
    answers = recorded_answers()
    assert len(answers) == 1000
    wrong = sum(any(answers[r["id"]][f] != r["label"][f] for f in r["label"]) for r in emails())
    assert 50 <= wrong <= 80, f"{wrong} disagreements: the brief asks for about 5-8%"
    data = json.loads((ROOT / "cassettes" / "ex05.json").read_text())
    assert data["metadata"]["labkit"]["provenance"] == "authored"
    labels = [i["labkit"]["label"] for i in data["interactions"]]
    assert sum("authored disagreement" in label for label in labels) == wrong


def test_starter_and_solution_send_the_lessons_recorded_requests(sol) -> None:
    starter = load_learner_module(exercises_dir() / "ex05_batch.py")
    for name in ("request_for", "Classification", "Queue", "load_emails", "tokens_for"):
        assert getattr(starter, name) is getattr(sol, name) is getattr(course, name), f"{name} is the lesson's, given"
    client = lab_client("ex05")
    for email in emails()[:3] + tuple(e for e in emails() if e["hard_case"]):
        run_virtual(sol.classify(client, dict(email)))
    assert {s.tier for s in client._labkit_transport.then.served} == {"exact"}


# --------------------------------------------------------------------------- limiter and virtual clock


def test_virtual_loop_jumps_over_sleeps() -> None:
    async def nap() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(asyncio.sleep(d) for d in (5.0, 60.0, 0.5)))
        return loop.time() - start

    t = time.perf_counter()
    assert run_virtual(nap()) == pytest.approx(60.0)
    assert time.perf_counter() - t < 1.0


def test_rate_limiter_paces_requests_and_tokens() -> None:
    async def burst(limiter: RateLimiter, n: int, tokens: int) -> list[float]:
        loop = asyncio.get_running_loop()
        times = []

        async def one() -> None:
            await limiter.acquire(tokens)
            times.append(loop.time())

        await asyncio.gather(*(one() for _ in range(n)))
        return times

    times = run_virtual(burst(RateLimiter(rpm=600), 50, 0))  # 10/s, burst of 1
    assert max(times) - min(times) == pytest.approx(4.9)
    assert window_peak(times, 1.0) <= 11
    times = run_virtual(burst(RateLimiter(rpm=None, tpm=60_000), 20, 500))  # 1,000 tokens/s
    assert max(times) - min(times) == pytest.approx(9.5, abs=0.01)


def test_an_oversized_request_goes_through_and_leaves_debt() -> None:
    bucket = TokenBucket(rate=100, capacity=10)
    assert bucket.wait_time(500, 0.0) == 0.0  # full bucket: let it through
    bucket.take(500, 0.0)
    assert bucket.wait_time(1, 0.0) == pytest.approx(4.91)


def test_window_peak_and_theoretical_limit() -> None:
    assert window_peak([0, 0.1, 0.2, 1.5, 1.6], 1.0) == 3
    assert window_peak([0, 0.5, 1.0], 1.0, [5, 1, 2]) == 6
    assert theoretical_rps(16, 0.05) == 320 and theoretical_rps(16, 0.05, 6_000) == 100


def test_lab_client_scripts_faults_per_item_and_crashes(sol) -> None:
    first, second = emails()[0], emails()[1]
    client = lab_client("ex05", per_item={email_text(second): ["400"]}, crash_after=2)

    async def go() -> list[str]:
        out = []
        for email in (first, second, first):
            try:
                await sol.classify(client, dict(email))
                out.append("ok")
            except openai.BadRequestError:
                out.append("400")
        return out

    with pytest.raises(Crash):
        run_virtual(go())
    assert [a.outcome for a in client._labkit_transport.attempts] == ["ok", "400", "ok"]


def test_solution_batch_on_the_virtual_clock_reaches_the_limit(sol, tmp_path: Path) -> None:
    client = lab_client("ex05", latency=Latency(base=0.05, jitter=0.01))

    async def go() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await sol.process_batch(client, list(emails()[:200]), tmp_path / "r.jsonl", concurrency=10, rpm=60_000, tpm=50_000_000, progress=False)
        return loop.time() - start

    elapsed = run_virtual(go())
    assert 200 / elapsed >= 0.9 * theoretical_rps(10, 0.05)
    assert client._labkit_transport.max_in_flight == 10
    assert len(sol.finished_ids(tmp_path / "r.jsonl")) == 200


# --------------------------------------------------------------------------- the local server


def test_server_serves_recordings_with_latency_over_real_http() -> None:
    with serving("ex05", latency=Latency(base=0.05)) as server:
        client = openai.OpenAI(api_key="test-no-key", base_url=server.url, max_retries=0)
        email = emails()[5]
        t = time.perf_counter()
        got = client.chat.completions.parse(**request_for(email)).choices[0].message.parsed
        assert time.perf_counter() - t >= 0.05
        assert got.urgency == recorded_answers()[email["id"]]["urgency"]
        with pytest.raises(openai.BadRequestError, match="no recording"):
            client.chat.completions.create(model=course.MODEL, messages=[{"role": "user", "content": "not recorded"}])
        assert server.stats.answered == 1 and server.stats.misses == 1


def test_server_keeps_up_with_concurrency_and_enforces_rpm() -> None:
    with serving("ex05", latency=Latency(base=0.02), rpm=600) as server:  # 10/s, 1 s burst
        client = openai.AsyncOpenAI(api_key="test-no-key", base_url=server.url, max_retries=0)

        async def flood() -> list[str]:
            async def one(e: dict) -> str:
                try:
                    await client.chat.completions.parse(**request_for(e))
                    return "ok"
                except openai.RateLimitError as err:
                    assert float(err.response.headers["retry-after-ms"]) > 0
                    return "429"

            return await asyncio.gather(*(one(dict(e)) for e in emails()[:30]))

        got = Counter(asyncio.run(flood()))
        assert got == {"ok": 10, "429": 20}
        assert server.stats.peak_in_flight == 10
