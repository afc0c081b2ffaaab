"""Exercise 02: tune one request per business goal: consistency, creativity, accuracy.

Three templates from the lesson. For each you write:
  * a request builder: the keyword arguments for ``client.chat.completions.create(**request)``
    (model, sampling or reasoning controls, output limit, system message + user message);
  * a send function: sends that request once on the client it is given and returns the result;
  * the cost estimate the template asks for, computed from its stated inputs.

Run `labkit check ex02` (or the last cell of notebooks/02_parameter_tuning.ipynb) to see which
success metrics pass. Two correct ways exist for each template (notebook 02 shows both): a
sampling model with temperature / top_p and max_tokens, or a reasoning model (gpt-5*, o1, o3),
which REJECTS temperature, top_p and max_tokens: steer it with reasoning_effort and cap it with
max_completion_tokens, leaving room for its reasoning tokens. `labkit.lint_request(**request)`
tells you before sending what the real API would reject.

Keep the user messages (SUPPORT_EMAIL, AD_BRIEF, analysis_user_message) as given: offline, the
recordings are found by them. Never put an API key in this file.
"""

from __future__ import annotations

import json  # noqa: F401  (you will need it for template 3)
import re  # noqa: F401  (handy for parsing headlines)
from typing import Any

from openai import OpenAI

from labkit.catalog import lesson_price_per_1k
from labkit.paths import data_dir

# --------------------------------------------------------------------------- template 1: consistency
COMPANY = "Trellis"
HELP_CENTER = "https://help.trellis.example"
SUPPORT_EMAIL = (
    "Customer email: Hi, my card was charged twice for our Team plan this month ($129 each time). "
    "I need the extra charge refunded ASAP."
)
# TODO: a low-cost model for thousands of tickets a day.
SUPPORT_MODEL = ""
# TODO: the role (a Tier 1 support agent for COMPANY), the tone (professional, empathetic,
# solution-focused), what every reply does (acknowledge, next step, help center) and the
# constraints (never promise a refund over $100, never admit liability).
SUPPORT_SYSTEM = ""

# The lesson's stated inputs for the savings estimate (its per-1K price is illustrative, not OpenAI's).
TICKETS_PER_DAY = 1_500
AUTOMATED_SHARE = 0.80
MANUAL_COST_PER_TICKET = 2.50
LESSON_PRICE_T1 = lesson_price_per_1k("gpt-5-mini")  # $0.002 per 1K tokens, as the lesson states
#: Our assumption (the lesson gives none): ~130 prompt tokens (measured) + a reply of up to 300, rounded up.
TOKENS_PER_TICKET = 450


def support_request(email: str = SUPPORT_EMAIL) -> dict[str, Any]:
    """Keyword arguments for a consistent, cheap, short support reply to ``email``."""
    # TODO: return {"model": ..., "messages": [system, user], <consistency control>, <output limit>}
    raise NotImplementedError("build the support request")


def support_reply(client: OpenAI, email: str = SUPPORT_EMAIL) -> str:
    """Send support_request(email) once on ``client`` and return the reply text."""
    # TODO: client.chat.completions.create(**support_request(email)), then the message content.
    raise NotImplementedError("send the support request")


def support_savings(
    tickets_per_day: int = TICKETS_PER_DAY,
    automated_share: float = AUTOMATED_SHARE,
    manual_cost_per_ticket: float = MANUAL_COST_PER_TICKET,
    tokens_per_ticket: int = TOKENS_PER_TICKET,
    price_per_1k: float = LESSON_PRICE_T1,
) -> dict[str, float]:
    """Daily cost today (every ticket by hand) versus with the bot answering the automated share.

    Return a dict with "manual_cost" (today), "automated_tickets", "api_cost" (the bot's tokens),
    "remaining_manual_cost" (tickets still answered by hand) and "savings" (today's cost minus
    the new daily cost).
    """
    # TODO: compute each figure from the arguments; type no results in.
    raise NotImplementedError("compute the daily savings")


# --------------------------------------------------------------------------- template 2: creativity
AD_BRIEF = (
    "Product: an AI assistant that automates sales admin. Audience: sales managers at companies "
    "with 50 to 500 employees. Pain point: hours lost to manual data entry in the CRM. "
    "Write 5 distinct ad headlines, one per line."
)
# TODO: a flagship model for the best creative quality.
HEADLINE_MODEL = ""
# TODO: the persona (a copywriter for a B2B SaaS brand), the brand voice (bold, data-driven,
# slightly provocative) and the format (short headlines, numbered, nothing else).
HEADLINE_SYSTEM = ""

HEADLINES_NEEDED = 50
TOKENS_PER_HEADLINE_REQUEST = 100
LESSON_PRICE_T2 = lesson_price_per_1k("gpt-5")  # $0.06 per 1K tokens, as the lesson states
BUDGET_USD = 500.0


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    """Keyword arguments for varied, short headlines."""
    # TODO: model, messages, the creativity controls and a 100-token cap (or their reasoning-model form).
    raise NotImplementedError("build the headline request")


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    """Send headline_request(brief) once and return the headlines, one string each (no numbering)."""
    # TODO: send, split the reply into lines, strip "1." / "-" markers and quotes, drop empty lines.
    raise NotImplementedError("send the headline request and split the reply")


def headline_cost(
    requests: int = HEADLINES_NEEDED,
    tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
    price_per_1k: float = LESSON_PRICE_T2,
    budget: float = BUDGET_USD,
) -> dict[str, Any]:
    """Return {"cost": ..., "within_budget": bool, "share_of_budget": ...} at the lesson's per-1K price."""
    # TODO
    raise NotImplementedError("compute the headline cost")


# --------------------------------------------------------------------------- template 3: accuracy
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
# TODO: a model built for exact reasoning.
ANALYSIS_MODEL = ""
# TODO: a senior financial analyst who works methodically, shows every calculation as numbered
# steps, states only what the data shows, and returns the result as a JSON object.
ANALYSIS_SYSTEM = ""

REPORT_TOKENS = 1_500
LESSON_PRICE_T3 = lesson_price_per_1k("o1")  # $0.15 per 1K tokens, as the lesson states


def load_financials() -> str:
    """The quarter's data set as CSV text (given)."""
    return (data_dir() / DATA_FILE).read_text(encoding="utf-8")


def analysis_user_message(csv_text: str) -> str:
    """The user message: the data set, then the question (given)."""
    return f"Dataset (Q3 2025, USD, one row per month and line):\n{csv_text.strip()}\n\n{ANALYSIS_QUESTION}"


def analysis_request(csv_text: str) -> dict[str, Any]:
    """Keyword arguments for an accurate, structured analysis of the data set."""
    # TODO: model, [system or developer message, user message], the no-creativity controls, an
    # output limit of at least 1,500 tokens (plus reasoning room on a reasoning model), response_format.
    raise NotImplementedError("build the analysis request")


def analyze(client: OpenAI, csv_text: str) -> dict[str, Any]:
    """Send analysis_request(csv_text) once; return {"work": the steps as text, one per line, "result": the JSON object}."""
    # TODO: send, json.loads the reply, join its "steps" with newlines.
    raise NotImplementedError("send the analysis request and parse the JSON")


def report_cost(report_tokens: int = REPORT_TOKENS, price_per_1k: float = LESSON_PRICE_T3) -> float:
    """Cost of one report at the lesson's per-1K price."""
    # TODO
    raise NotImplementedError("compute the report cost")
