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

What you are given comes from labkit/course/ex02.py: the user messages (SUPPORT_EMAIL, AD_BRIEF,
analysis_user_message), the data set (load_financials), a ready-made Structured Outputs format
(ANALYSIS_FORMAT) and the lesson's stated inputs for the cost estimates. Keep the user messages
as given: offline, the recordings are found by them. Never put an API key in this file.
"""

from __future__ import annotations

import json  # template 3 parses the model's JSON reply
import re  # handy for stripping the headlines' numbering
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
    load_financials,
)


# --------------------------------------------------------------------------- template 1: consistency
# Given: COMPANY and HELP_CENTER (for the system message), SUPPORT_EMAIL (the user message), and
# the lesson's inputs for the savings estimate: TICKETS_PER_DAY, AUTOMATED_SHARE,
# MANUAL_COST_PER_TICKET, LESSON_PRICE_T1 (its illustrative per-1K price, not OpenAI's) and
# TOKENS_PER_TICKET (our assumption: the lesson gives none).

# TODO: a low-cost model for thousands of tickets a day.
SUPPORT_MODEL = ""
# TODO: the role (a Tier 1 support agent for COMPANY), the tone (professional, empathetic,
# solution-focused), what every reply does (acknowledge, next step, help center) and the
# constraints (never promise a refund over $100, never admit liability).
SUPPORT_SYSTEM = ""


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
# Given: AD_BRIEF (the user message) and the lesson's inputs for the budget: HEADLINES_NEEDED,
# TOKENS_PER_HEADLINE_REQUEST, LESSON_PRICE_T2 (its illustrative per-1K price) and BUDGET_USD.

# TODO: a flagship model for the best creative quality.
HEADLINE_MODEL = ""
# TODO: the persona (a copywriter for a B2B SaaS brand), the brand voice (bold, data-driven,
# slightly provocative) and the format (short headlines, numbered, nothing else).
HEADLINE_SYSTEM = ""


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    """Keyword arguments for varied, short headlines."""
    # TODO: model, messages, the creativity controls and a 100-token cap (or their reasoning-model form).
    raise NotImplementedError("build the headline request")


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    """Send headline_request(brief) once and return the headlines, one string each (no numbering)."""
    # TODO: send, split the reply into lines, strip "1." / "-" markers and quotes, drop empty lines.
    raise NotImplementedError("send the headline request and split the reply")


def headline_cost(requests: int = HEADLINES_NEEDED, tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
                  price_per_1k: float = LESSON_PRICE_T2, budget: float = BUDGET_USD) -> dict[str, Any]:
    """Return {"cost": ..., "within_budget": bool, "share_of_budget": ...} at the lesson's per-1K price."""
    # TODO
    raise NotImplementedError("compute the headline cost")


# --------------------------------------------------------------------------- template 3: accuracy
# Given: load_financials() (the data set as CSV text), analysis_user_message(csv_text) (the user
# message: the data, then the question), ANALYSIS_FORMAT (pass it as response_format and the
# reply is a JSON object with "steps" and the figures), and the lesson's inputs for the report's
# cost: REPORT_TOKENS and LESSON_PRICE_T3 (its illustrative per-1K price).

# TODO: a model built for exact reasoning.
ANALYSIS_MODEL = ""
# TODO: a senior financial analyst who works methodically, shows every calculation as numbered
# steps, states only what the data shows, and returns the result as a JSON object.
ANALYSIS_SYSTEM = ""


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

# labkit starter be9daf5f59a4 (made from solutions/ex02_parameter_tuning.py by `labkit exercises build`)
