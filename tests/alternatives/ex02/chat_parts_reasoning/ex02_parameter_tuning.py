"""Exercise 02, another valid solution: Chat Completions in the reasoning form for every template
(support at low effort, headlines on the everyday model at low effort and low verbosity, the analysis
on the reasoning model at its default medium effort with JSON mode), message content given as text
parts, sends through client.with_options(timeout=...), numbered work lines, and a dataclass for the
savings figures."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from openai import OpenAI

from labkit.course.ex02 import (
    AD_BRIEF,
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


def _msg(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": [{"type": "text", "text": text}]}


def _text(client: OpenAI, request: dict[str, Any]) -> str:
    completion = client.with_options(timeout=120.0, max_retries=1).chat.completions.create(**request)
    return completion.choices[0].message.content or ""


# --------------------------------------------------------------------------- template 1

SUPPORT_MODEL = FAST
SUPPORT_SYSTEM = f"""You are a Tier 1 support agent for {COMPANY}.
Tone: professional, warm and empathetic; solve the problem.
Always: acknowledge the issue, give a solution or a clear next step, link {HELP_CENTER}.
Never promise a refund over $100. Never admit liability; escalate such cases to billing."""


def support_request(email: str = SUPPORT_EMAIL) -> dict[str, Any]:
    return {"model": SUPPORT_MODEL, "messages": [_msg("system", SUPPORT_SYSTEM), _msg("user", email)],
            "reasoning_effort": "low", "max_completion_tokens": 2_000}


def support_reply(client: OpenAI, email: str = SUPPORT_EMAIL) -> str:
    return _text(client, support_request(email))


@dataclass
class DailySavings:
    manual_cost: float
    automated_tickets: float
    api_cost: float
    remaining_manual_cost: float
    savings: float


def support_savings(tickets_per_day: int = TICKETS_PER_DAY, automated_share: float = AUTOMATED_SHARE,
                    manual_cost_per_ticket: float = MANUAL_COST_PER_TICKET, tokens_per_ticket: int = TOKENS_PER_TICKET,
                    price_per_1k: float = LESSON_PRICE_T1) -> dict[str, float]:
    automated = tickets_per_day * automated_share
    manual = tickets_per_day * manual_cost_per_ticket
    api = automated * (tokens_per_ticket / 1000) * price_per_1k
    remaining = (tickets_per_day - automated) * manual_cost_per_ticket
    new_daily = remaining + api
    return asdict(DailySavings(manual, automated, api, remaining, manual - new_daily))


# --------------------------------------------------------------------------- template 2

HEADLINE_MODEL = DEFAULT
HEADLINE_SYSTEM = ("Persona: an award-winning copywriter for a B2B SaaS brand. Voice: bold, data-driven, slightly "
                   "provocative. Format: a numbered list of short headlines (10 words max), nothing else.")


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    return {"model": HEADLINE_MODEL, "messages": [_msg("system", HEADLINE_SYSTEM), _msg("user", brief)],
            "reasoning_effort": "low", "verbosity": "low", "max_completion_tokens": 1_000}


_LINE = re.compile(r"^(?:\d+[.)] |[-*\u2022] )?(?P<body>.*)$")


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    out: list[str] = []
    for raw in _text(client, headline_request(brief)).split("\n"):
        match = _LINE.match(raw.strip())
        body = match.group("body").strip() if match else ""
        for left, right in (('"', '"'), ("\u201c", "\u201d")):
            if len(body) > 1 and body.startswith(left) and body.endswith(right):
                body = body[1:-1].strip()
                break
        if body:
            out.append(body)
    return out


def headline_cost(requests: int = HEADLINES_NEEDED, tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
                  price_per_1k: float = LESSON_PRICE_T2, budget: float = BUDGET_USD) -> dict[str, Any]:
    cost = requests * tokens_per_request * price_per_1k / 1000
    return {"cost": cost, "within_budget": bool(cost <= budget), "share_of_budget": cost / budget}


# --------------------------------------------------------------------------- template 3

ANALYSIS_MODEL = REASONING
ANALYSIS_SYSTEM = ("You are a senior financial analyst. Work methodically and show your work: numbered steps, each "
                   "with the figures it uses. State only facts the data shows. Answer with one JSON object with the keys "
                   "steps (list of strings), total_revenue, total_expenses, net_profit, net_profit_margin_pct and "
                   "top_expense_categories (list of {category, amount}, largest first).")


def analysis_request(csv_text: str) -> dict[str, Any]:
    return {"model": ANALYSIS_MODEL,
            "messages": [_msg("developer", ANALYSIS_SYSTEM), _msg("user", analysis_user_message(csv_text))],
            "max_completion_tokens": 30_000, "response_format": {"type": "json_object"}}


def analyze(client: OpenAI, csv_text: str) -> dict[str, Any]:
    result = json.loads(_text(client, analysis_request(csv_text)))
    work = "\n".join(f"Step {i}: {step}" for i, step in enumerate(result["steps"], 1))
    return {"work": work, "result": result}


def report_cost(report_tokens: int = REPORT_TOKENS, price_per_1k: float = LESSON_PRICE_T3) -> float:
    return float(report_tokens) * price_per_1k / 1000.0
