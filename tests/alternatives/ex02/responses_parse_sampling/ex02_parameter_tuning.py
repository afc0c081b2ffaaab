"""Exercise 02, another valid solution: the Responses API in the sampling form for templates 1 and 2
(effort "none", temperature 0.1 / 1.3 with top_p 1.0, given as instructions or as a developer input
item), template 3 through responses.parse with a pydantic model at high effort, headlines split with
string methods (no regex), and the cost figures computed in another order."""

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
    load_financials,  # noqa: F401 - part of the starter's givens
)
from labkit.course.models import DEFAULT, FAST, REASONING

SUPPORT_MODEL = FAST
SUPPORT_SYSTEM = (
    f"Role: Tier 1 customer support agent at {COMPANY} (project management software). "
    "Tone: professional and empathetic, focused on solving the problem. "
    "Every reply acknowledges the customer's situation, offers a fix or a clear next step, and links "
    f"the help center at {HELP_CENTER}. Constraints: do not promise any refund above $100 and do not "
    "admit liability; hand such cases to the billing team."
)


def support_request(email: str = SUPPORT_EMAIL) -> dict[str, Any]:
    return {
        "model": SUPPORT_MODEL,
        "instructions": SUPPORT_SYSTEM,
        "input": email,
        "reasoning": {"effort": "none"},
        "temperature": 0.1,
        "max_output_tokens": 250,
    }


def support_reply(client: OpenAI, email: str = SUPPORT_EMAIL) -> str:
    response = client.responses.create(**support_request(email))
    return response.output_text


def support_savings(
    tickets_per_day: int = TICKETS_PER_DAY,
    automated_share: float = AUTOMATED_SHARE,
    manual_cost_per_ticket: float = MANUAL_COST_PER_TICKET,
    tokens_per_ticket: int = TOKENS_PER_TICKET,
    price_per_1k: float = LESSON_PRICE_T1,
) -> dict[str, float]:
    bot_tickets = automated_share * tickets_per_day
    by_hand = tickets_per_day - bot_tickets
    today = manual_cost_per_ticket * tickets_per_day
    tokens = bot_tickets * tokens_per_ticket
    api = tokens * price_per_1k / 1000
    still_manual = manual_cost_per_ticket * by_hand
    return {
        "manual_cost": today,
        "automated_tickets": bot_tickets,
        "api_cost": api,
        "remaining_manual_cost": still_manual,
        "savings": today - still_manual - api,
    }


HEADLINE_MODEL = DEFAULT
HEADLINE_SYSTEM = (
    "You are the senior copywriter for a B2B SaaS company. Brand voice: bold, punchy, data-driven and "
    "provocative; challenge how sales teams work today. Output: numbered headlines of at most ten words, nothing else."
)


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    return {
        "model": HEADLINE_MODEL,
        "input": [{"role": "developer", "content": HEADLINE_SYSTEM}, {"role": "user", "content": brief}],
        "reasoning": {"effort": "none"},
        "temperature": 1.3,
        "top_p": 1.0,
        "max_output_tokens": 90,
    }


_PAIRS = {'"': '"', "\u201c": "\u201d"}


def _clean(line: str) -> str:
    s = line.strip()
    if s[:1] in ("-", "*", "\u2022") and s[1:2] == " ":
        s = s[2:].strip()
    else:
        digits = len(s) - len(s.lstrip("0123456789"))
        if digits and s[digits:digits + 1] in (".", ")") and s[digits + 1:digits + 2] == " ":
            s = s[digits + 2:].strip()
    if len(s) >= 2 and _PAIRS.get(s[0]) == s[-1]:
        s = s[1:-1].strip()
    return s


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    text = client.responses.create(**headline_request(brief)).output_text
    cleaned = (_clean(line) for line in text.splitlines())
    return [h for h in cleaned if h]


def headline_cost(requests: int = HEADLINES_NEEDED, tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
                  price_per_1k: float = LESSON_PRICE_T2, budget: float = BUDGET_USD) -> dict[str, Any]:
    spend = requests * (tokens_per_request / 1000) * price_per_1k
    return dict(cost=spend, within_budget=not spend > budget, share_of_budget=spend / budget)


ANALYSIS_MODEL = REASONING
ANALYSIS_SYSTEM = (
    "You are a senior financial analyst. Be methodical: go step by step, show your work in numbered steps "
    "with the figures each one uses, and report only what the data supports, with no speculation. "
    "Return the result as JSON."
)


class Expense(BaseModel):
    category: str
    amount: float


class Analysis(BaseModel):
    steps: list[str]
    total_revenue: float
    total_expenses: float
    net_profit: float
    net_profit_margin_pct: float
    top_expense_categories: list[Expense]


def analysis_request(csv_text: str) -> dict[str, Any]:
    return {
        "model": ANALYSIS_MODEL,
        "instructions": ANALYSIS_SYSTEM,
        "input": analysis_user_message(csv_text),
        "reasoning": {"effort": "high"},
        "max_output_tokens": 32_000,
        "text_format": Analysis,
    }


def analyze(client: OpenAI, csv_text: str) -> dict[str, Any]:
    parsed = client.responses.parse(**analysis_request(csv_text)).output_parsed
    if parsed is None:
        raise ValueError("the model returned no analysis")
    result = parsed.model_dump()
    return {"work": "\n".join(result["steps"]), "result": result}


def report_cost(report_tokens: int = REPORT_TOKENS, price_per_1k: float = LESSON_PRICE_T3) -> float:
    return price_per_1k * report_tokens / 1000
