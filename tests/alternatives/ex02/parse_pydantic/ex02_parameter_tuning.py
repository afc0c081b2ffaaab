"""Exercise 02, another valid solution: Chat Completions with the sampling form at effort "none"
(temperature 0 for support, temperature 1.2 with top_p left at its default for headlines, on the
BACKUP model), and Structured Outputs through chat.completions.parse with a pydantic model."""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from pydantic import BaseModel

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
    load_financials,
)
from labkit.course.models import BACKUP, FAST, REASONING

SUPPORT_MODEL = FAST
SUPPORT_SYSTEM = (
    f"You are a {COMPANY} customer support agent (Tier 1). Be professional and empathetic, and solve the problem. "
    f"Acknowledge the customer's problem, state the next step, and point them to {HELP_CENTER}. Never commit to a "
    "refund of more than $100 and never admit liability; escalate to billing instead."
)

HEADLINE_MODEL = BACKUP
HEADLINE_SYSTEM = (
    "You are an advertising copywriter for a B2B SaaS brand. The voice is confident, provocative and data-driven. "
    "Give each headline its own numbered line, ten words at most, and nothing else."
)

ANALYSIS_MODEL = REASONING
ANALYSIS_SYSTEM = (
    "You are a senior financial analyst. Work methodically, step by step: list every calculation as a numbered "
    "step with its figures. Use only the data given, with no speculation."
)


class Category(BaseModel):
    category: str
    amount: float


class Q3Analysis(BaseModel):
    steps: list[str]
    total_revenue: float
    total_expenses: float
    net_profit: float
    net_profit_margin_pct: float
    top_expense_categories: list[Category]


def _chat(system: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def support_request(email: str = SUPPORT_EMAIL) -> dict[str, Any]:
    return {"model": SUPPORT_MODEL, "messages": _chat(SUPPORT_SYSTEM, email), "reasoning_effort": "none",
            "temperature": 0, "max_completion_tokens": 250}


def support_reply(client: OpenAI, email: str = SUPPORT_EMAIL) -> str:
    message = client.chat.completions.create(**support_request(email)).choices[0].message
    return (message.content or "").strip()


def support_savings(tickets_per_day: int = TICKETS_PER_DAY, automated_share: float = AUTOMATED_SHARE,
                    manual_cost_per_ticket: float = MANUAL_COST_PER_TICKET, tokens_per_ticket: int = TOKENS_PER_TICKET,
                    price_per_1k: float = LESSON_PRICE_T1) -> dict[str, float]:
    automated = automated_share * tickets_per_day
    manual_left = tickets_per_day - automated
    out = {
        "manual_cost": manual_cost_per_ticket * tickets_per_day,
        "automated_tickets": automated,
        "api_cost": (automated * tokens_per_ticket) * (price_per_1k / 1000),
        "remaining_manual_cost": manual_left * manual_cost_per_ticket,
    }
    out["savings"] = out["manual_cost"] - out["remaining_manual_cost"] - out["api_cost"]
    return out


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    return {"model": HEADLINE_MODEL, "messages": _chat(HEADLINE_SYSTEM, brief), "reasoning_effort": "none",
            "temperature": 1.2, "max_completion_tokens": 90}


def _clean(line: str) -> str:
    line = line.strip()
    head, sep, rest = line.partition(" ")
    if sep and (head in ("-", "*", "\u2022") or (head[:-1].isdigit() and head[-1:] in (".", ")"))):
        line = rest.strip()
    if len(line) >= 2 and (line[0], line[-1]) in (('"', '"'), ("\u201c", "\u201d")):
        line = line[1:-1].strip()
    return line


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    reply = client.chat.completions.create(**headline_request(brief)).choices[0].message.content or ""
    return [h for h in map(_clean, reply.splitlines()) if h]


def headline_cost(requests: int = HEADLINES_NEEDED, tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
                  price_per_1k: float = LESSON_PRICE_T2, budget: float = BUDGET_USD) -> dict[str, Any]:
    cost = requests * tokens_per_request * price_per_1k / 1000
    return {"cost": cost, "within_budget": cost <= budget, "share_of_budget": cost / budget}


def analysis_request(csv_text: str) -> dict[str, Any]:
    return {"model": ANALYSIS_MODEL, "messages": _chat(ANALYSIS_SYSTEM, analysis_user_message(csv_text)),
            "max_completion_tokens": 20_000, "response_format": Q3Analysis}


def analyze(client: OpenAI, csv_text: str) -> dict[str, Any]:
    parsed = client.chat.completions.parse(**analysis_request(csv_text)).choices[0].message.parsed
    assert parsed is not None
    return {"work": "\n".join(parsed.steps), "result": parsed.model_dump()}


def report_cost(report_tokens: int = REPORT_TOKENS, price_per_1k: float = LESSON_PRICE_T3) -> float:
    return report_tokens * price_per_1k / 1000


__all__ = ["load_financials"]
