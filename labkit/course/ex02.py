"""Lesson 02, parameter tuning: the three templates' inputs, the course's requests, and what a good answer names.

Template 1 (consistency) answers a support email, template 2 (creativity) writes ad headlines
from a brief, template 3 (accuracy) analyses a quarter's financial data. Exercise 02 gives you
the inputs below (the email, the brief, the data set and its schema, the lesson's stated
figures) and asks for the model, the controls and the system messages. The course's own wording
and settings are here too, because notebook 02 and the recordings use them.
"""

from __future__ import annotations

import re
from typing import Any

from ..catalog import lesson_price_per_1k
from ..paths import data_dir
from .models import FAST, FLAGSHIP, LESSON_FLAGSHIP, LESSON_REASONING, LESSON_SMALL, REASONING

#: Tokens to leave for hidden reasoning beyond the visible answer, by reasoning effort: a course
#: rule of thumb, not an API rule (too small a max_completion_tokens can end with an empty reply).
REASONING_ROOM = {"minimal": 300, "low": 1_200, "medium": 4_000, "high": 16_000}

# --------------------------------------------------------------------------- template 1: support triage (consistency)
#: The company the support agent works for, and its help center.
COMPANY = "Trellis"
HELP_CENTER = "https://help.trellis.example"
#: Each of the two charges the customer writes about, and the largest refund a reply may promise.
TICKET_AMOUNT = 129.0
REFUND_LIMIT = 100.0
#: Template 1's user message (offline, the recordings are found by it).
SUPPORT_EMAIL = (
    f"Customer email: Hi, my card was charged twice for our Team plan this month (${TICKET_AMOUNT:.0f} each time). "
    "I need the extra charge refunded ASAP."
)
#: The course's wording of template 1's system message (exercise 02 asks you to write your own).
SUPPORT_SYSTEM = (
    f"You answer tickets as a Tier 1 support agent for {COMPANY}, a project management app. "
    "Write in a professional, empathetic tone and aim to solve the problem. In every reply: "
    "acknowledge the customer's issue, give a solution or a clear next step, and point to the help "
    f"center ({HELP_CENTER}). Never promise a refund over ${REFUND_LIMIT:.0f} and never admit liability: "
    "escalate those cases to the billing team instead. Keep replies under 150 words."
)
SUPPORT_MESSAGES = [{"role": "system", "content": SUPPORT_SYSTEM}, {"role": "user", "content": SUPPORT_EMAIL}]
#: Template 1's settings as the lesson writes them (the real API rejects them on this model).
LESSON_SUPPORT: dict[str, Any] = {"model": LESSON_SMALL, "temperature": 0.2, "max_tokens": 300}
#: The same settings on a sampling model, which accepts them (the reference solution's form).
SUPPORT_SAMPLING: dict[str, Any] = {**LESSON_SUPPORT, "model": FAST}
#: The reasoning form: no sampling parameters, minimal effort, and room for reasoning in the cap.
SUPPORT_REASONING: dict[str, Any] = {"model": LESSON_SMALL, "reasoning_effort": "minimal", "verbosity": "low",
                                     "max_completion_tokens": 800}

#: The lesson's stated inputs for the savings estimate (its per-1K price is illustrative, not OpenAI's).
TICKETS_PER_DAY = 1_500
AUTOMATED_SHARE = 0.80
MANUAL_COST_PER_TICKET = 2.50
LESSON_PRICE_T1 = lesson_price_per_1k(LESSON_SMALL)  # $0.002 per 1K tokens, as the lesson states
#: Our assumption (the lesson gives none): ~130 prompt tokens (measured) + a reply of up to 300, rounded up.
TOKENS_PER_TICKET = 450

# --------------------------------------------------------------------------- template 2: ad headlines (creativity)
#: Template 2's user message.
AD_BRIEF = (
    "Product: an AI assistant that automates sales admin. Audience: sales managers at companies "
    "with 50 to 500 employees. Pain point: hours lost to manual data entry in the CRM. "
    "Write 5 distinct ad headlines, one per line."
)
#: The course's wording of template 2's system message (exercise 02 asks you to write your own).
HEADLINE_SYSTEM = (
    "Write ad copy as the in-house copywriter of a B2B SaaS brand whose voice is bold, data-driven "
    "and a little provocative: question how sales teams work today. Keep each headline to 10 words "
    "or fewer, number them, and add nothing else to the reply."
)
HEADLINE_MESSAGES = [{"role": "system", "content": HEADLINE_SYSTEM}, {"role": "user", "content": AD_BRIEF}]
#: Template 2's settings as the lesson writes them, on a sampling model, and in the reasoning form.
LESSON_HEADLINES: dict[str, Any] = {"model": LESSON_FLAGSHIP, "temperature": 1.0, "top_p": 0.9, "max_tokens": 100}
HEADLINE_SAMPLING: dict[str, Any] = {**LESSON_HEADLINES, "model": FLAGSHIP}
HEADLINE_REASONING: dict[str, Any] = {"model": LESSON_FLAGSHIP, "reasoning_effort": "low", "verbosity": "low",
                                      "max_completion_tokens": 2_500}

#: The lesson's stated inputs for the headline budget.
HEADLINES_NEEDED = 50
TOKENS_PER_HEADLINE_REQUEST = 100
LESSON_PRICE_T2 = lesson_price_per_1k(LESSON_FLAGSHIP)  # $0.06 per 1K tokens, as the lesson states
BUDGET_USD = 500.0

#: Words that show a headline speaks to the brief's audience (sales managers and their teams).
AUDIENCE_WORDS = re.compile(r"\b(sales|sell\w*|rep|reps|closers?|quotas?|pipelines?|deals?|account executives?)\b", re.I)
#: Words that show a headline names the brief's pain point (manual data entry in the CRM).
PAIN_WORDS = re.compile(r"(data entry|\bmanual\w*|\btyp(?:e|es|ed|ing)\b|\bretyp\w*|copy-?past\w*|spreadsheet\w*|\badmin\w*|"
                        r"busywork|paperwork|keystroke\w*|\bcrm\b|\blogging\b|by hand|updates? itself)", re.I)

#: The temperature demo: the brief asking for one headline, sent DEMO_RUNS times at each temperature.
ONE_HEADLINE_BRIEF = AD_BRIEF.replace("Write 5 distinct ad headlines, one per line.", "Write one ad headline.")
DEMO_TEMPERATURES = (0.2, 1.2)
DEMO_RUNS = 6


def one_headline_request(temperature: float) -> dict[str, Any]:
    """The temperature demo's request: one short headline from the flagship at ``temperature``."""
    messages = [{"role": "system", "content": HEADLINE_SYSTEM}, {"role": "user", "content": ONE_HEADLINE_BRIEF}]
    return {"model": HEADLINE_SAMPLING["model"], "messages": messages, "temperature": temperature, "max_tokens": 30}


# --------------------------------------------------------------------------- template 3: financial analysis (accuracy)
#: The quarter's data set (in data/), made by data/make_financials.py.
DATA_FILE = "financials_q3_2025.csv"
ANALYSIS_QUESTION = (
    "Question: what was the Q3 2025 net profit margin (net profit = total revenue minus total "
    "expenses, as a percentage of total revenue), and which three expense categories cost the most "
    "over the quarter?"
)
#: A ready-made Structured Outputs format: pass it as response_format and the reply is this JSON object.
ANALYSIS_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "q3_analysis",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["steps", "total_revenue", "total_expenses", "net_profit",
                         "net_profit_margin_pct", "top_expense_categories"],
            "properties": {
                "steps": {"type": "array", "items": {"type": "string"}},
                "total_revenue": {"type": "number"},
                "total_expenses": {"type": "number"},
                "net_profit": {"type": "number"},
                "net_profit_margin_pct": {"type": "number"},
                "top_expense_categories": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["category", "amount"],
                        "properties": {"category": {"type": "string"}, "amount": {"type": "number"}},
                    },
                },
            },
        },
    },
}
#: The course's wording of template 3's system message (exercise 02 asks you to write your own).
ANALYSIS_SYSTEM = (
    "Act as a senior financial analyst reviewing one quarter's figures. Work methodically: total each "
    "revenue line and each expense category over the quarter, then compute net profit and the net "
    "profit margin. Show your work as numbered steps, each with the figures it uses. State only what "
    "the data shows: no estimates, assumptions or speculation. Return the result as a JSON object."
)
#: Template 3's settings as the lesson writes them (the real API rejects them on this model).
LESSON_ANALYSIS: dict[str, Any] = {"model": LESSON_REASONING, "temperature": 0.0, "max_tokens": 1500}
#: The reasoning form (the reference solution's) and the sampling form, both with the schema.
ANALYSIS_REASONING: dict[str, Any] = {"model": REASONING, "reasoning_effort": "medium", "max_completion_tokens": 10_000,
                                      "response_format": ANALYSIS_FORMAT}
ANALYSIS_SAMPLING: dict[str, Any] = {"model": FLAGSHIP, "temperature": 0, "max_tokens": 2_000, "response_format": ANALYSIS_FORMAT}

#: The lesson's stated inputs for one report's cost.
REPORT_TOKENS = 1_500
LESSON_PRICE_T3 = lesson_price_per_1k(LESSON_REASONING)  # $0.15 per 1K tokens, as the lesson states


def load_financials() -> str:
    """The quarter's data set as CSV text."""
    return (data_dir() / DATA_FILE).read_text(encoding="utf-8")


def analysis_user_message(csv_text: str) -> str:
    """Template 3's user message: the data set, then the question (offline, the recordings are found by it)."""
    return f"Dataset (Q3 2025, USD, one row per month and line):\n{csv_text.strip()}\n\n{ANALYSIS_QUESTION}"


def analysis_messages(csv_text: str, role: str = "developer") -> list[dict[str, str]]:
    """ANALYSIS_SYSTEM as a developer (or system) message, then analysis_user_message(csv_text)."""
    return [{"role": role, "content": ANALYSIS_SYSTEM}, {"role": "user", "content": analysis_user_message(csv_text)}]


# --------------------------------------------------------------------------- deliberately bad variants
# The checks' mutants (tests/mutants/ex02.toml) send these; cassettes/sources/ex02_bad.py records
# a bad answer for each, which only that exact request gets.

#: A loose support system message with no role, constraints or tone.
LOOSE_SUPPORT_SYSTEM = f"You are a friendly support bot for {COMPANY}. Keep customers happy."
#: The brief aimed at another audience (HR managers) and pain point (onboarding paperwork).
HR_BRIEF = AD_BRIEF.replace("sales admin", "HR admin").replace("sales managers", "HR managers").replace(
    "manual data entry in the CRM", "manual paperwork during onboarding")
#: The brief without its pain point.
NO_PAIN_BRIEF = AD_BRIEF.replace(" Pain point: hours lost to manual data entry in the CRM.", "")
#: A loose analysis system message that invites opinion.
SPECULATIVE_SYSTEM = "You are a financial analyst. Share your view of these numbers as a JSON object."
