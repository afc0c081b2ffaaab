"""The enterprise client on a real Redis: cache-hit and cache-miss latency, rate-limit checks per second.

Uses the reference EnterpriseGPTClient (solutions/ex06) on REDIS_URL, or on labkit's private
redis-server when REDIS_URL is unset. The API is replayed in-process from cassettes/ex06.json, so a
miss measures our own path (cache lookup, Lua rate limit, Lua budget reservation, the SDK and the
replay transport, the settle transaction, the cache write), not OpenAI's latency.
Prints readable lines, then one JSON line last: hit_p50_ms, hit_p99_ms, miss_p50_ms, miss_p99_ms,
ratelimit_checks_per_s (one thread) and ratelimit_checks_per_s_8_threads.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.pop("OPENAI_API_KEY", None)
os.environ["LABKIT_ROOT"] = str(ROOT)

import labkit
from labkit import redisd
from labkit.checks import load_learner_module
from labkit.course.ex06 import EFFORT, MAX_COMPLETION_TOKENS, PREMIUM, RESET

HITS, MISSES, RL_SECONDS = 3000, 600, 1.5


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    sol = load_learner_module(ROOT / "solutions" / "ex06_enterprise_client.py")
    r = redisd.connect()
    prefix = redisd.fresh_prefix("bench")
    ent = sol.EnterpriseGPTClient(labkit.client("ex06"), r, prefix=prefix, requests_per_minute=10**9,
                                  monthly_budget_usd=10**6)
    try:
        ent.complete(RESET, user_id="warm")  # warm up: first request, script loading, tokenizer
        key = ent.cache_key({"model": PREMIUM, "messages": RESET, "reasoning_effort": EFFORT,
                             "max_completion_tokens": MAX_COMPLETION_TOKENS})
        if r.get(key) is None:
            sys.exit("the warm-up request was not cached; the reference solution changed its cache key")

        hits = []
        for _ in range(HITS):
            t = time.perf_counter()
            answer = ent.complete(RESET, user_id="bench")
            hits.append(time.perf_counter() - t)
        assert answer.cached

        misses = []
        for _ in range(MISSES):
            r.delete(key)
            t = time.perf_counter()
            answer = ent.complete(RESET, user_id="bench")
            misses.append(time.perf_counter() - t)
        assert not answer.cached

        n, deadline = 0, time.perf_counter() + RL_SECONDS
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            ent.check_rate_limit("bench-user")
            n += 1
        single = n / (time.perf_counter() - start)

        counts = [0] * 8

        def worker(i: int) -> None:
            end = time.perf_counter() + RL_SECONDS
            while time.perf_counter() < end:
                ent.check_rate_limit(f"bench-user-{i}")
                counts[i] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        eight = sum(counts) / (time.perf_counter() - start)
        server = r.info("server")
    finally:
        redisd.drop_prefix(r, prefix)

    where = "REDIS_URL" if not redisd.is_private() else "labkit's private server (unix socket)"
    print(f"Redis {server.get('redis_version')} on {where}; API replayed in-process from cassettes/ex06.json")
    print(f"cache hit:  p50 {pct(hits, .5):.3f} ms, p99 {pct(hits, .99):.3f} ms, mean {statistics.mean(hits) * 1000:.3f} ms ({HITS} requests)")
    print(f"cache miss: p50 {pct(misses, .5):.3f} ms, p99 {pct(misses, .99):.3f} ms ({MISSES} requests: lookup, rate limit, "
          "budget reservation, replayed API call, settle, cache write)")
    print(f"rate-limit checks: {single:,.0f}/s on one thread, {eight:,.0f}/s on 8 threads (one Lua call each)")
    print(json.dumps({
        "hit_p50_ms": round(pct(hits, .5), 4), "hit_p99_ms": round(pct(hits, .99), 4),
        "miss_p50_ms": round(pct(misses, .5), 4), "miss_p99_ms": round(pct(misses, .99), 4),
        "ratelimit_checks_per_s": round(single), "ratelimit_checks_per_s_8_threads": round(eight),
        "redis": server.get("redis_version"), "private_server": redisd.is_private(),
    }))


if __name__ == "__main__":
    main()
