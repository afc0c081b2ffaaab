"""Exercise 02: tune one request per business goal: consistency, creativity, accuracy.

Three templates from the lesson. For each you write:
  * a request builder: the keyword arguments for ``client.chat.completions.create(**request)``
    (model, controls, output cap, system message + user message), or, if you prefer the
    Responses API, for ``client.responses.create(**request)`` (instructions, input, ...);
  * a send function: sends that request once on the client it is given and returns the result;
  * the cost estimate the template asks for, computed from its stated inputs.

Run `labkit check ex02` (or the last cell of notebooks/02_parameter_tuning.ipynb) to see which
success metrics pass. Every current model is a reasoning model, so each template has two correct
forms (notebook 02 shows both):
  * the sampling form: a model whose reasoning effort goes down to "none" (the FAST and DEFAULT
    roles), sent reasoning_effort="none" with temperature / top_p;
  * the reasoning form: no temperature or top_p (rejected), steered with reasoning_effort and
    verbosity, with a cap that leaves room for the hidden reasoning tokens.
Cap the output with max_completion_tokens (Chat Completions) or max_output_tokens (Responses):
max_tokens is deprecated and every current model rejects it. `labkit.lint_request(**request)`
tells you before sending what the real API would reject. Pick models by role
(labkit.course.models), never by typing an id.

What you are given comes from labkit/course/ex02.py: the user messages (SUPPORT_EMAIL, AD_BRIEF,
analysis_user_message), the data set (load_financials), ready-made Structured Outputs formats
(ANALYSIS_FORMAT for Chat Completions, ANALYSIS_TEXT_FORMAT for Responses) and the lesson's
stated inputs for the cost estimates. Keep the user messages as given (offline, the recordings
are found by them) and pass each builder's argument on as it is. Never put an API key in this file.
"""

from __future__ import annotations

import json  # template 3 parses the model's JSON reply
import re  # handy for stripping the headlines' numbering
from typing import Any

from openai import OpenAI

from labkit.course.ex02 import (
    AD_BRIEF,
    ANALYSIS_FORMAT,
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
from labkit.course.models import DEFAULT, FAST, FLAGSHIP, REASONING


# --------------------------------------------------------------------------- template 1: consistency
# Given: COMPANY and HELP_CENTER (for the system message), SUPPORT_EMAIL (the user message), and
# the lesson's inputs for the savings estimate: TICKETS_PER_DAY, AUTOMATED_SHARE,
# MANUAL_COST_PER_TICKET, LESSON_PRICE_T1 (its illustrative per-1K price, not OpenAI's) and
# TOKENS_PER_TICKET (our assumption: the lesson gives none).

# TODO: a low-cost model for thousands of tickets a day (a role from labkit.course.models).
SUPPORT_MODEL = ""
# TODO: the role (a Tier 1 support agent for COMPANY), the tone (professional, empathetic,
# solution-focused), what every reply does (acknowledge, next step, help center) and the
# constraints (never promise a refund over $100, never admit liability).
SUPPORT_SYSTEM = ""


def support_request(email: str = SUPPORT_EMAIL) -> dict[str, Any]:
    """Keyword arguments for a consistent, cheap, short support reply to ``email`` (the user message, as given)."""
    # TODO: return {"model": ..., "messages": [system, user], <consistency control>, <output cap>}:
    # temperature 0.2 or lower at reasoning_effort "none", or the reasoning form (low effort, room to think).
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

    Return a dict with "manual_cost" (today), "automated_tickets" (tickets x share, an average day:
    not rounded), "api_cost" (the bot's tokens), "remaining_manual_cost" (tickets still answered by
    hand) and "savings" (today's cost minus the new daily cost).
    """
    # TODO: compute each figure from the arguments; type no results in.
    raise NotImplementedError("compute the daily savings")


# --------------------------------------------------------------------------- template 2: creativity
# Given: AD_BRIEF (the user message) and the lesson's inputs for the budget: HEADLINES_NEEDED,
# TOKENS_PER_HEADLINE_REQUEST, LESSON_PRICE_T2 (its illustrative per-1K price) and BUDGET_USD.

# TODO: a full-size model for creative quality (not the cheap tier).
HEADLINE_MODEL = ""
# TODO: the persona (a copywriter for a B2B SaaS brand), the brand voice (bold, data-driven,
# slightly provocative) and the format (short headlines, numbered, nothing else).
HEADLINE_SYSTEM = ""


def headline_request(brief: str = AD_BRIEF) -> dict[str, Any]:
    """Keyword arguments for varied, short headlines from ``brief`` (the user message, as given)."""
    # TODO: model, messages, the creativity controls (temperature 1.0, top_p 0.9 at effort "none")
    # and a 100-token cap, or their reasoning form (no sampling parameters, room to think).
    raise NotImplementedError("build the headline request")


def headlines(client: OpenAI, brief: str = AD_BRIEF) -> list[str]:
    """Send headline_request(brief) once and return the headlines, one string per headline line.

    Each line of the reply that holds a headline may start with a numbering marker ("1." or "1)")
    or a bullet ("-", "*", "\u2022") and a space, and may wrap the headline in double quotes (straight
    or curly); blank lines may separate them. Return each headline without those, and with nothing
    else cut: a headline's own periods, colons, digits and inner quotes belong to it.
    """
    # TODO: send, split the reply into lines, strip the marker and the quotes, drop empty lines.
    raise NotImplementedError("send the headline request and split the reply")


def headline_cost(requests: int = HEADLINES_NEEDED, tokens_per_request: int = TOKENS_PER_HEADLINE_REQUEST,
                  price_per_1k: float = LESSON_PRICE_T2, budget: float = BUDGET_USD) -> dict[str, Any]:
    """Return {"cost": ..., "within_budget": bool, "share_of_budget": cost / budget} at the lesson's per-1K price."""
    # TODO
    raise NotImplementedError("compute the headline cost")


# --------------------------------------------------------------------------- template 3: accuracy
# Given: load_financials() (the data set as CSV text), analysis_user_message(csv_text) (the user
# message: the data, then the question), ANALYSIS_FORMAT (pass it as response_format and the
# reply is a JSON object with "steps" and the figures; ANALYSIS_TEXT_FORMAT is the Responses
# API's form), and the lesson's inputs for the report's cost: REPORT_TOKENS and LESSON_PRICE_T3
# (its illustrative per-1K price).

# TODO: a model built for exact reasoning.
ANALYSIS_MODEL = ""
# TODO: a senior financial analyst who works methodically, shows every calculation as numbered
# steps, states only what the data shows, and returns the result as a JSON object.
ANALYSIS_SYSTEM = ""


def analysis_request(csv_text: str) -> dict[str, Any]:
    """Keyword arguments for an accurate, structured analysis of ``csv_text`` (passed on as given)."""
    # TODO: model, [system or developer message, analysis_user_message(csv_text)], reasoning at
    # medium effort or more (no sampling parameters), an output cap of at least 1,500 visible tokens
    # plus room for reasoning, and the Structured Outputs format.
    raise NotImplementedError("build the analysis request")


def analyze(client: OpenAI, csv_text: str) -> dict[str, Any]:
    """Send analysis_request(csv_text) once; return {"work": the steps as text, one per line, "result": the JSON object}."""
    # TODO: send, json.loads the reply, join its "steps" with newlines.
    raise NotImplementedError("send the analysis request and parse the JSON")


def report_cost(report_tokens: int = REPORT_TOKENS, price_per_1k: float = LESSON_PRICE_T3) -> float:
    """Cost of one report at the lesson's per-1K price."""
    # TODO
    raise NotImplementedError("compute the report cost")

# labkit starter 246a0f30b49e (made from solutions/ex02_parameter_tuning.py by `labkit exercises build`)
