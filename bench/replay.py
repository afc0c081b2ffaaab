"""Replayed chat completions per second: labkit.client() vs the SDK on a bare MockTransport.

Both run in this process, interleaved in rounds, on the same recorded response, so the
ratio measures labkit's own overhead (matching, provenance) on top of the SDK.
Prints one JSON line last: labkit_per_s, bare_per_s, ratio (bare / labkit; 1.0 = no overhead).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx2
import openai

ROOT = Path(__file__).resolve().parent.parent
os.environ.pop("OPENAI_API_KEY", None)
os.environ["LABKIT_ROOT"] = str(ROOT)
sys.path.insert(0, str(ROOT / "cassettes" / "sources"))

from selftest import HELLO, MODEL

import labkit
from labkit.replay import load_cassette

N, ROUNDS = 1500, 5


def bare_client() -> openai.OpenAI:
    inter = load_cassette(ROOT / "cassettes" / "selftest.json").interactions[0]

    def handler(request: httpx2.Request) -> httpx2.Response:
        request.read()
        return httpx2.Response(inter.status, headers=list(inter.headers), content=inter.content)

    return openai.OpenAI(api_key="x", base_url="https://api.openai.com/v1", http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def rate(c: openai.OpenAI) -> float:
    t = time.perf_counter()
    for _ in range(N):
        c.chat.completions.create(model=MODEL, messages=HELLO)
    return N / (time.perf_counter() - t)


def main() -> None:
    lab, bare = labkit.client("selftest"), bare_client()
    rate(lab), rate(bare)  # warm up
    labs, bares = [], []
    for _ in range(ROUNDS):
        labs.append(rate(lab))
        bares.append(rate(bare))
    lab_s, bare_s = sorted(labs)[ROUNDS // 2], sorted(bares)[ROUNDS // 2]
    print(f"median of {ROUNDS} rounds x {N} requests: labkit {lab_s:,.0f}/s, bare MockTransport {bare_s:,.0f}/s")
    print(json.dumps({"labkit_per_s": round(lab_s), "bare_per_s": round(bare_s), "ratio": round(bare_s / lab_s, 3), "requests_per_round": N, "rounds": ROUNDS}))


if __name__ == "__main__":
    main()
