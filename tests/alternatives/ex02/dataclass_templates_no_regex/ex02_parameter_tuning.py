"""Exercise 02, another valid solution: each template's settings in a frozen dataclass that renders
its Chat Completions request, system messages written in my own words, headline lines cleaned with
string methods and a `match` on the first character (no regex), the analysis in the reasoning form at
high effort with the ready-made Structured Outputs format, and the estimates written as one formula each."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from openai import OpenAI

from labkit.course.ex02 import (
    AD_BRIEF,
    ANALYSIS_FORMAT,
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


@dataclass(frozen=True)
class Template:
    """One business goal's request settings."""

    model: str
    system: str
    controls: dict[str, Any] = field(default_factory=dict)

    def request(self, user_message: str) -> dict[str, Any]:
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": user_message}]
        return {"model": self.model, "messages": messages, **self.controls}


SUPPORT_MODEL = FAST
SUPPORT_SYSTEM = (
    f"Role: Tier 1 customer support agent at {COMPANY}, the project management app.\n"
    "Tone: professional and empathetic; stay focused on solving the customer's problem.\n"
    f"Every reply: acknowledge the issue, give one clear next step, and link the help center ({HELP_CENTER}).\n"
    "Constraints: never promise a refund above $100 and never admit liability; hand those to the billing team."
)
SUPPORT = Template(SUPPORT_MODEL, SUPPORT_SYSTEM, {"reasoning_effort": "none", "temperature": 0.0, "max_completion_tokens": 300})

HEADLINE_MODEL = DEFAULT
HEADLINE_SYSTEM = (
    "You are the senior copywriter for a B2B SaaS brand. Brand voice: bold, data-driven and slightly "
    "provocative. Format: short headlines (ten words at most), numbered, one per line, nothing else."
)
HEADLINES = Template(HEADLINE_MODEL, HEADLINE_SYSTEM,
                     {"reasoning_effort": "none", "temperature": 1.2, "top_p": 0.95, "max_completion_tokens": 100})

ANALYSIS_MODEL = REASONING
ANALYSIS_SYSTEM = (
    "You are a senior financial analyst. Work methodically and show every calculation as numbered steps. "
    "Report only what the data shows, with no speculation or estimates, and return the result as a JSON object."
)
ANALYSIS = Template(ANALYSIS_MODEL, ANALYSIS_SYSTEM,
                    {"reasoning_effort": "high", "max_completion_tokens": 32_000, "response_format": ANALYSIS_FORMAT})


def support_request(email: str = SUPPORT_EMAIL) -> dict[str, Any]:
    return SUPPORT.request(email)


def support_reply(client: OpenAI, email: str = SUPPORT_EMAIL) -> str:
    reply = client.chat.completions.create(**support_request(email))
    return reply.choices[0].message.content or ""


def support_savings(
    tickets_per_day: int = TICKETS_PER_DAY,
    automated_share: float = AUTOMATED_SHARE,
    manual_cost_per_ticket: float = MANUAL_COST_PER_TICKET,
    tokens_per_ticket: int = TOKENS_PER_TICKET,
    price_per_1k: float = LESSON_PRICE_T1,
) -> dict[str, float]:
    bot_tickets = automated_share * tickets_per_day
    by_hand_today = manual_cost_per_ticket * tickets_per_day
    api = bot_tickets * (tokens_per_ticket * price_per_1k / 1000)
    still_by_hand = manual_cost_per_ticket * (tickets_per_day - bot_tickets)
    return {
        "manual_cost": by_hand_today,
        "automated_tickets": bot_tickets,
        "api_cost": api,
        "remaining_manual_cost": still_by_hand,
        "savings": by_hand_today - still_by_hand - api,
    }


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    return HEADLINES.request(brief)


def _clean(line: str) -> str:
    """One reply line without its numbering or bullet and the quotes around the headline."""
    text = line.strip()
    match text[:1]:
        case "-" | "*" | "\u2022" if text[1:2].isspace():
            text = text[1:].strip()
        case digit if digit.isdigit():
            number = len(text) - len(text.lstrip("0123456789"))
            if text[number:number + 1] in (".", ")") and text[number + 1:number + 2].isspace():
                text = text[number + 1:].strip()
    for left, right in (('"', '"'), ("\u201c", "\u201d")):
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            text = text[1:-1].strip()
            break
    return text


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    reply = client.chat.completions.create(**headline_request(brief))
    cleaned = (_clean(line) for line in (reply.choices[0].message.content or "").splitlines())
    return [headline for headline in cleaned if headline]


def headline_cost(requests: int = HEADLINES_NEEDED, tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
                  price_per_1k: float = LESSON_PRICE_T2, budget: float = BUDGET_USD) -> dict[str, Any]:
    spend = price_per_1k * (requests * tokens_per_request) / 1000
    return {"cost": spend, "within_budget": not spend > budget, "share_of_budget": spend / budget}


def analysis_request(csv_text: str) -> dict[str, Any]:
    return ANALYSIS.request(analysis_user_message(csv_text))


def analyze(client: OpenAI, csv_text: str) -> dict[str, Any]:
    reply = client.chat.completions.create(**analysis_request(csv_text))
    result = json.loads(reply.choices[0].message.content or "{}")
    lines: list[str] = []
    for step in result.get("steps", []):
        lines.append(step)
    return {"work": "\n".join(lines), "result": result}


def report_cost(report_tokens: int = REPORT_TOKENS, price_per_1k: float = LESSON_PRICE_T3) -> float:
    return price_per_1k * report_tokens / 1000
