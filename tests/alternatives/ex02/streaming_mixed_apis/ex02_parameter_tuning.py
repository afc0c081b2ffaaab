"""Exercise 02, another valid solution mixing the two APIs: the support reply through the Responses API
in the reasoning form (low effort, low verbosity, room to think), the headlines through Chat Completions
streamed chunk by chunk in the sampling form at the edges of the creative ranges (temperature 1.5,
top_p 0.8), and the analysis through the Responses API at high effort with ANALYSIS_TEXT_FORMAT.
Numbering is removed with re.match groups, and the headline lines come from a generator."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from openai import OpenAI

from labkit.course.ex02 import (
    AD_BRIEF,
    ANALYSIS_TEXT_FORMAT,
    AUTOMATED_SHARE,
    BUDGET_USD,
    COMPANY,
    HEADLINES_NEEDED,
    HELP_CENTER,
    LESSON_PRICE_T1,
    LESSON_PRICE_T2,
    LESSON_PRICE_T3,
    MANUAL_COST_PER_TICKET,
    REPORT_TOKENS,
    SUPPORT_EMAIL,
    TICKETS_PER_DAY,
    TOKENS_PER_HEADLINE_REQUEST,
    TOKENS_PER_TICKET,
    analysis_user_message,
)
from labkit.course.models import DEFAULT, FAST, REASONING

SUPPORT_MODEL = FAST
SUPPORT_SYSTEM = (
    f"You are a Tier 1 support agent for {COMPANY}. Be professional and empathetic, and solution-focused. "
    f"In each reply, acknowledge the problem, offer a concrete next step and point to {HELP_CENTER}. "
    "Never promise a refund over $100. Never admit liability."
)
HEADLINE_MODEL = DEFAULT
HEADLINE_SYSTEM = (
    "Persona: copywriter for a B2B SaaS brand. Voice: bold, data-driven, slightly provocative. "
    "Output: short numbered headlines, one per line, and nothing else."
)
ANALYSIS_MODEL = REASONING
ANALYSIS_SYSTEM = (
    "You are a senior financial analyst. Be methodical: show each calculation as a numbered step with its figures. "
    "State only facts the data supports. Return a JSON object."
)


def support_request(email: str = SUPPORT_EMAIL) -> dict[str, Any]:
    return {
        "model": SUPPORT_MODEL,
        "instructions": SUPPORT_SYSTEM,
        "input": email,
        "reasoning": {"effort": "low"},
        "text": {"verbosity": "low"},
        "max_output_tokens": 1_200,
    }


def support_reply(client: OpenAI, email: str = SUPPORT_EMAIL) -> str:
    return client.responses.create(**support_request(email)).output_text


def support_savings(
    tickets_per_day: int = TICKETS_PER_DAY,
    automated_share: float = AUTOMATED_SHARE,
    manual_cost_per_ticket: float = MANUAL_COST_PER_TICKET,
    tokens_per_ticket: int = TOKENS_PER_TICKET,
    price_per_1k: float = LESSON_PRICE_T1,
) -> dict[str, float]:
    out: dict[str, float] = {}
    out["manual_cost"] = tickets_per_day * manual_cost_per_ticket
    out["automated_tickets"] = tickets_per_day * automated_share
    out["api_cost"] = out["automated_tickets"] * tokens_per_ticket * price_per_1k / 1000
    out["remaining_manual_cost"] = (tickets_per_day - out["automated_tickets"]) * manual_cost_per_ticket
    out["savings"] = out["manual_cost"] - out["remaining_manual_cost"] - out["api_cost"]
    return out


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    return {
        "model": HEADLINE_MODEL,
        "messages": [{"role": "system", "content": HEADLINE_SYSTEM}, {"role": "user", "content": brief}],
        "reasoning_effort": "none",
        "temperature": 1.5,
        "top_p": 0.8,
        "max_completion_tokens": 100,
    }


LINE = re.compile(r'\s*(?:(?:\d+[.)]|[-*\u2022])\s+)?(?P<body>.*?)\s*$')


def _headline_lines(text: str) -> Iterator[str]:
    for raw in text.split("\n"):
        m = LINE.match(raw)
        body = m["body"] if m else raw.strip()
        if len(body) >= 2 and (body[0], body[-1]) in (('"', '"'), ("\u201c", "\u201d")):
            body = body[1:-1].strip()
        if body:
            yield body


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    stream = client.chat.completions.create(**headline_request(brief), stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    return list(_headline_lines(text))


def headline_cost(requests: int = HEADLINES_NEEDED, tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
                  price_per_1k: float = LESSON_PRICE_T2, budget: float = BUDGET_USD) -> dict[str, Any]:
    tokens = requests * tokens_per_request
    cost = tokens * price_per_1k / 1000
    return {"cost": cost, "within_budget": cost <= budget, "share_of_budget": cost / budget}


def analysis_request(csv_text: str) -> dict[str, Any]:
    return {
        "model": ANALYSIS_MODEL,
        "instructions": ANALYSIS_SYSTEM,
        "input": analysis_user_message(csv_text),
        "reasoning": {"effort": "high"},
        "max_output_tokens": 40_000,
        "text": {"format": ANALYSIS_TEXT_FORMAT},
    }


def analyze(client: OpenAI, csv_text: str) -> dict[str, Any]:
    response = client.responses.create(**analysis_request(csv_text))
    result = json.loads(response.output_text)
    return {"work": "\n".join(result["steps"]), "result": result}


def report_cost(report_tokens: int = REPORT_TOKENS, price_per_1k: float = LESSON_PRICE_T3) -> float:
    return report_tokens * price_per_1k / 1000
