"""Checks for exercise 01: the first API call."""

from __future__ import annotations

import math
from typing import Any

from openai.types.chat import ChatCompletion

from ..costs import cost
from ..course.ex01 import SYSTEM
from ..replay import SECRET_RE
from . import Context, register, replay_transport


def _served(ctx: Context, cassette: str | None = None) -> tuple[Any, Any, list[Any]]:
    client = ctx.client(cassette)
    result = ctx.attr("first_completion")(client)
    return client, result, replay_transport(client).served


@register("ex01.messages")
def messages(ctx: Context) -> tuple[bool, str]:
    got = ctx.attr("build_messages")("Probe prompt 123")
    want = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Probe prompt 123"}]
    if got == want:
        return True, "system + user messages with the given prompt"
    return False, f"got {got!r:.160}"


@register("ex01.real-call")
def real_call(ctx: Context) -> tuple[bool, str]:
    _, result, served = _served(ctx)
    if len(served) != 1:
        return False, f"{len(served)} requests were sent through the client (expected exactly 1)"
    if not isinstance(result, ChatCompletion):
        return False, f"returned {type(result).__name__}, not the ChatCompletion the SDK gave you"
    if served[0].tier != "exact":
        return False, f"the request differs from the lesson's: {served[0].note}"
    return True, f"one request, returned {result.id}"


@register("ex01.summary")
def summary(ctx: Context) -> tuple[bool, str]:
    _, completion, _ = _served(ctx)
    got = ctx.attr("summarize")(completion)
    if not isinstance(got, dict):
        return False, f"summarize() returned {type(got).__name__}, not a dict"
    want = {
        "text": completion.choices[0].message.content,
        "model": completion.model,
        "finish_reason": completion.choices[0].finish_reason,
        "prompt_tokens": completion.usage.prompt_tokens,
        "completion_tokens": completion.usage.completion_tokens,
    }
    wrong = [k for k, v in want.items() if got.get(k) != v]
    if wrong:
        return False, "wrong or missing: " + ", ".join(f"{k}={got.get(k)!r:.40} (response has {want[k]!r:.40})" for k in wrong)
    return True, f"{want['prompt_tokens']} prompt + {want['completion_tokens']} completion tokens, finish_reason={want['finish_reason']}"


@register("ex01.cost")
def cost_check(ctx: Context) -> tuple[bool, str]:
    _, completion, _ = _served(ctx)
    got = ctx.attr("summarize")(completion).get("cost_usd")
    want = cost(completion.usage, completion.model).total_usd
    if isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
        return True, f"${want:.8f} for this call"
    return False, f"cost_usd={got!r}, the catalog prices this usage at ${want:.8f}"


@register("ex01.not-hard-coded")
def not_hard_coded(ctx: Context) -> tuple[bool, str]:
    _, completion, _ = _served(ctx, "ex01_variant")
    got = ctx.attr("summarize")(completion)
    want = completion.choices[0].message.content
    if isinstance(got, dict) and got.get("text") == want and got.get("completion_tokens") == completion.usage.completion_tokens:
        return True, "the summary follows the answer it was given"
    return False, "with a different recorded answer the summary did not change"


@register("ex01.no-key-in-code")
def no_key(ctx: Context) -> tuple[bool, str]:
    source = ctx.path.read_text(encoding="utf-8", errors="replace")
    if SECRET_RE.search(source) or "api_key=\"sk-" in source:
        return False, "the file contains something that looks like an API key"
    return True, "no key in the file"
