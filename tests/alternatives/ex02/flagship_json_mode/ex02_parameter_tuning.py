"""Exercise 02, another valid solution: settings kept as data in one table, the support reply on
light reasoning through Chat Completions, headlines on the flagship (reasoning form), and the
analysis on the flagship at its default effort with JSON mode (the word JSON in the message)."""

from __future__ import annotations

import json
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
    load_financials,
)
from labkit.course.models import FAST, FLAGSHIP

SETTINGS: dict[str, dict[str, Any]] = {
    "support": {"model": FAST, "reasoning_effort": "low", "max_completion_tokens": 4_000},
    "headlines": {"model": FLAGSHIP, "reasoning_effort": "medium", "verbosity": "low", "max_completion_tokens": 8_000},
    "analysis": {"model": FLAGSHIP, "max_completion_tokens": 40_000, "response_format": {"type": "json_object"}},
}
SUPPORT_MODEL = SETTINGS["support"]["model"]
HEADLINE_MODEL = SETTINGS["headlines"]["model"]
ANALYSIS_MODEL = SETTINGS["analysis"]["model"]

SUPPORT_SYSTEM = (
    f"As a Tier 1 support representative of {COMPANY}, answer with a professional, empathetic tone. Acknowledge the "
    f"issue, give one clear next step, and link the help center ({HELP_CENTER}). Constraints: no refund promise over "
    "$100, and no admission of liability or fault."
)
HEADLINE_SYSTEM = (
    "Act as the in-house copywriter of a B2B SaaS brand: bold, witty and provocative, backed by data. Write short "
    "numbered headlines only."
)
ANALYSIS_SYSTEM = (
    "Act as a senior financial analyst. Show every calculation as numbered steps (step-by-step), state only what the "
    "data shows, and return a JSON object with the keys steps, total_revenue, total_expenses, net_profit, "
    "net_profit_margin_pct (a percentage) and top_expense_categories (objects with category and amount, largest first)."
)


def _request(template: str, system: str, user: str) -> dict[str, Any]:
    return {**SETTINGS[template], "messages": [{"role": "developer", "content": system}, {"role": "user", "content": user}]}


def _text(client: OpenAI, request: dict[str, Any]) -> str:
    return client.chat.completions.create(**request).choices[0].message.content or ""


def support_request(email: str = SUPPORT_EMAIL) -> dict[str, Any]:
    return _request("support", SUPPORT_SYSTEM, email)


def support_reply(client: OpenAI, email: str = SUPPORT_EMAIL) -> str:
    return _text(client, support_request(email))


def support_savings(tickets_per_day: int = TICKETS_PER_DAY, automated_share: float = AUTOMATED_SHARE,
                    manual_cost_per_ticket: float = MANUAL_COST_PER_TICKET, tokens_per_ticket: int = TOKENS_PER_TICKET,
                    price_per_1k: float = LESSON_PRICE_T1) -> dict[str, float]:
    manual = float(tickets_per_day * manual_cost_per_ticket)
    automated = float(tickets_per_day * automated_share)
    api = automated * tokens_per_ticket / 1000 * price_per_1k
    remaining = manual - automated * manual_cost_per_ticket
    return dict(manual_cost=manual, automated_tickets=automated, api_cost=api, remaining_manual_cost=remaining,
                savings=manual - (remaining + api))


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    return _request("headlines", HEADLINE_SYSTEM, brief)


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    found = []
    for raw in _text(client, headline_request(brief)).split("\n"):
        line = raw.strip()
        if line[:1] in ("-", "*", "\u2022") and line[1:2] == " ":
            line = line[2:]
        else:
            digits = len(line) - len(line.lstrip("0123456789"))
            if digits and line[digits:digits + 1] in (".", ")") and line[digits + 1:digits + 2] == " ":
                line = line[digits + 2:]
        line = line.strip()
        if line[:1] + line[-1:] in ('""', "\u201c\u201d") and len(line) > 1:
            line = line[1:-1].strip()
        if line:
            found.append(line)
    return found


def headline_cost(requests: int = HEADLINES_NEEDED, tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
                  price_per_1k: float = LESSON_PRICE_T2, budget: float = BUDGET_USD) -> dict[str, Any]:
    tokens = requests * tokens_per_request
    cost = tokens / 1000 * price_per_1k
    return {"cost": cost, "within_budget": budget >= cost, "share_of_budget": cost / budget}


def analysis_request(csv_text: str) -> dict[str, Any]:
    return _request("analysis", ANALYSIS_SYSTEM, analysis_user_message(csv_text))


def analyze(client: OpenAI, csv_text: str) -> dict[str, Any]:
    result = json.loads(_text(client, analysis_request(csv_text)))
    return {"work": "\n".join(result["steps"]), "result": result}


def report_cost(report_tokens: int = REPORT_TOKENS, price_per_1k: float = LESSON_PRICE_T3) -> float:
    return report_tokens / 1000 * price_per_1k


__all__ = ["load_financials"]
