"""Exercise 02, another valid solution: the Responses API throughout, the reasoning form of every
template, one small class per template, and system messages in other words."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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
    load_financials,
)
from labkit.course.models import FAST, FLAGSHIP, REASONING


@dataclass(frozen=True)
class Template:
    """One request shape for the Responses API: model, instructions, reasoning and text settings, cap."""

    model: str
    instructions: str
    effort: str
    cap: int
    verbosity: str | None = None
    text_format: dict[str, Any] | None = None

    def request(self, user: str, *, as_messages: bool = False) -> dict[str, Any]:
        text: dict[str, Any] = {}
        if self.verbosity:
            text["verbosity"] = self.verbosity
        if self.text_format:
            text["format"] = self.text_format
        req: dict[str, Any] = {"model": self.model, "reasoning": {"effort": self.effort}, "max_output_tokens": self.cap}
        if as_messages:  # instructions as a developer message inside the input
            req["input"] = [{"role": "developer", "content": self.instructions}, {"role": "user", "content": user}]
        else:
            req["instructions"] = self.instructions
            req["input"] = user
        if text:
            req["text"] = text
        return req


SUPPORT = Template(
    model=FAST,
    instructions=(f"Role: Tier 1 customer support specialist at {COMPANY}. Tone: professional and empathetic, focused on "
                  f"solving the problem. Every answer acknowledges the issue, offers a next step and links {HELP_CENTER}. "
                  "Rules: do not promise any refund above $100 and do not accept liability or fault; hand such cases to "
                  "the billing team."),
    effort="low", verbosity="low", cap=1_200)
SUPPORT_MODEL = SUPPORT.model
SUPPORT_SYSTEM = SUPPORT.instructions

HEADLINES = Template(
    model=FLAGSHIP,
    instructions=("You are the senior copywriter for a B2B SaaS company. Brand voice: bold, punchy, data-driven, willing to "
                  "challenge the status quo of sales teams. Reply with numbered headlines of at most ten words, nothing else."),
    effort="low", verbosity="low", cap=1_500)
HEADLINE_MODEL = HEADLINES.model
HEADLINE_SYSTEM = HEADLINES.instructions

ANALYSIS = Template(
    model=REASONING,
    instructions=("You are a senior financial analyst. Proceed step by step and show your work: sum each revenue line and "
                  "each expense category for the quarter, then net profit and margin, one numbered step per calculation. "
                  "Report only what the figures show, as JSON."),
    effort="high", cap=30_000, text_format=ANALYSIS_TEXT_FORMAT)
ANALYSIS_MODEL = ANALYSIS.model
ANALYSIS_SYSTEM = ANALYSIS.instructions


def support_request(email: str = SUPPORT_EMAIL) -> dict[str, Any]:
    return SUPPORT.request(email)


def support_reply(client: OpenAI, email: str = SUPPORT_EMAIL) -> str:
    return client.responses.create(**support_request(email)).output_text


@dataclass(frozen=True)
class Savings:
    tickets: float
    share: float
    manual: float
    tokens: float
    price: float

    def figures(self) -> dict[str, float]:
        automated = self.tickets * self.share
        api = self.tokens * automated * self.price / 1000
        remaining = self.manual * (self.tickets - automated)
        today = self.manual * self.tickets
        return {"manual_cost": today, "automated_tickets": automated, "api_cost": api,
                "remaining_manual_cost": remaining, "savings": today - remaining - api}


def support_savings(tickets_per_day: int = TICKETS_PER_DAY, automated_share: float = AUTOMATED_SHARE,
                    manual_cost_per_ticket: float = MANUAL_COST_PER_TICKET, tokens_per_ticket: int = TOKENS_PER_TICKET,
                    price_per_1k: float = LESSON_PRICE_T1) -> dict[str, float]:
    return Savings(tickets_per_day, automated_share, manual_cost_per_ticket, tokens_per_ticket, price_per_1k).figures()


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    return HEADLINES.request(brief)


_LINE = re.compile(r"^[ \t]*(?:(?:\d+[.)]|[-*\u2022])[ \t]+)?(?P<text>.*?)[ \t]*$", re.M)


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    text = client.responses.create(**headline_request(brief)).output_text.replace("\r\n", "\n")
    out = []
    for match in _LINE.finditer(text):
        head = match.group("text").strip()
        for left, right in (('"', '"'), ("\u201c", "\u201d")):
            if len(head) >= 2 and head.startswith(left) and head.endswith(right):
                head = head[1:-1].strip()
                break
        if head:
            out.append(head)
    return out


def headline_cost(requests: int = HEADLINES_NEEDED, tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
                  price_per_1k: float = LESSON_PRICE_T2, budget: float = BUDGET_USD) -> dict[str, Any]:
    cost = price_per_1k * requests * tokens_per_request / 1000
    return {"cost": cost, "within_budget": not cost > budget, "share_of_budget": cost / budget}


def analysis_request(csv_text: str) -> dict[str, Any]:
    return ANALYSIS.request(analysis_user_message(csv_text), as_messages=True)


def analyze(client: OpenAI, csv_text: str) -> dict[str, Any]:
    response = client.responses.create(**analysis_request(csv_text))
    result = json.loads(response.output_text)
    return {"work": "\n".join(str(step) for step in result["steps"]), "result": result}


def report_cost(report_tokens: int = REPORT_TOKENS, price_per_1k: float = LESSON_PRICE_T3) -> float:
    return price_per_1k * report_tokens / 1000


__all__ = ["load_financials"]
