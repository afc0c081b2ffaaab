"""labkit.faults: scripted failures reach the real SDK as its real errors, with no real sleeping."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest
from selftest import HELLO, MODEL

from labkit import faults
from labkit.clock import Clock


def ask(c: openai.OpenAI) -> str:
    return c.chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content


def test_scenario_parses() -> None:
    steps = faults.parse_scenario("429 retry-after-ms=20, 500, timeout, reset, ok")
    assert [s.kind for s in steps] == ["status", "status", "timeout", "reset", "ok"]
    assert steps[0].status == 429 and steps[0].headers == (("retry-after-ms", "20"),)
    with pytest.raises(ValueError, match="unknown fault step"):
        faults.parse_scenario("explode")


@pytest.mark.parametrize(
    ("step", "error"),
    [("400", openai.BadRequestError), ("401", openai.AuthenticationError), ("429", openai.RateLimitError),
     ("500", openai.InternalServerError), ("503", openai.InternalServerError), ("timeout", openai.APITimeoutError),
     ("reset", openai.APIConnectionError)],
)
def test_each_fault_is_the_sdk_error(step: str, error: type[Exception]) -> None:
    c = faults.client(step, "selftest")
    with pytest.raises(error):
        ask(c)
    assert ask(c).startswith("Welcome")  # steps ran out: the cassette answers
    assert [a.outcome for a in c._labkit_transport.attempts] == [step, "ok"]


def test_sdk_retries_honour_retry_after_ms_on_the_clock() -> None:
    clock = Clock()
    c = faults.client("429 retry-after-ms=20, 500, ok", "selftest", clock=clock, max_retries=2)
    t = time.perf_counter()
    assert ask(c).startswith("Welcome")
    assert time.perf_counter() - t < 0.5  # nothing slept for real
    assert clock.sleeps[0] == pytest.approx(0.020)  # the SDK honoured retry-after-ms
    assert 0.0 < clock.sleeps[1] <= 1.0  # then its own backoff with jitter
    assert len(c._labkit_transport.attempts) == 3


def test_latency_and_concurrency_are_measured() -> None:
    async def run() -> faults.FaultTransport:
        c = faults.client((), "selftest", async_=True, latency=faults.Latency(base=0.05))
        sem = asyncio.Semaphore(4)

        async def one() -> None:
            async with sem:
                await c.chat.completions.create(model=MODEL, messages=HELLO)

        await asyncio.gather(*(one() for _ in range(12)))
        return c._labkit_transport

    t = time.perf_counter()
    transport = asyncio.run(run())
    elapsed = time.perf_counter() - t
    assert transport.max_in_flight == 4 and len(transport.attempts) == 12
    assert 0.14 < elapsed < 1.5  # 3 waves of 50 ms


def test_latency_on_a_clock_does_not_sleep() -> None:
    clock = Clock()
    c = faults.client((), "selftest", clock=clock, latency=faults.Latency(base=2.0, per_token=0.01))
    ask(c)
    assert clock.sleeps and clock.sleeps[0] > 2.0
