"""Lesson 02, parameter tuning: the three templates' inputs, the course's requests, and the exercise's contract.

Template 1 (consistency) answers a support email, template 2 (creativity) writes ad headlines
from a brief, template 3 (accuracy) analyses a quarter's financial data. Exercise 02 gives you
the inputs below (the email, the brief, the data set and its schema, the lesson's stated
figures) and asks for the model, the controls and the system messages. The course's own wording
and settings are here too, because notebook 02 and the recordings use them.

Every current model is a reasoning model. Sampling parameters (temperature, top_p) are accepted
only at reasoning effort "none", on the models whose catalog entry offers it; elsewhere a template's
intent is expressed with reasoning effort, verbosity and an output cap that leaves room for the
hidden reasoning. ``max_tokens`` is deprecated and rejected by every current model: the cap is
``max_completion_tokens`` (Chat Completions) or ``max_output_tokens`` (Responses API).

The last part of this module is the exercise's contract, as data: what each template asks of a
request, the room a reasoning model needs, how a reply lists its headlines, and the inputs the
checks draw their scenarios from.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..authoring import REASONING_PER_EFFORT
from ..catalog import EFFORTS, lesson_price_per_1k
from ..paths import data_dir
from .models import DEFAULT, FAST, FLAGSHIP, LESSON_FLAGSHIP, LESSON_REASONING, LESSON_SMALL, REASONING

# --------------------------------------------------------------------------- room for reasoning

#: The authored answers vary their reasoning tokens by up to +/-20% around the course's model
#: (labkit.authoring.REASONING_PER_EFFORT); the room below covers the top of that spread.
REASONING_SPREAD = 1.2
#: OpenAI's reasoning guide: when you start with a reasoning model and have not measured what it
#: spends, reserve about this many tokens for reasoning and output, then lower the cap from `usage`.
OPENAI_STARTING_CAP = 25_000


def reasoning_room(effort: str, visible: int) -> int:
    """Tokens a reasoning model is expected to spend thinking before a ``visible``-token answer.

    The course's documented model of reasoning spend (labkit.authoring.REASONING_PER_EFFORT: a
    multiple of the visible answer with a floor, per effort), at the top of its spread, in the
    64-token steps the API reports. Effort "none" needs no room.
    """
    ratio, floor = REASONING_PER_EFFORT.get(effort, REASONING_PER_EFFORT["medium"])
    most = max(float(floor), ratio * visible) * REASONING_SPREAD
    return math.ceil(most / 64) * 64


def minimum_cap(effort: str, visible: int) -> int:
    """The smallest output cap that lets a reasoning model finish a ``visible``-token answer at ``effort``.

    A cap below this can be used up by reasoning: the reply comes back cut or empty
    (finish_reason "length") and the tokens are billed anyway. A larger cap is not wrong: it is
    only a ceiling (OpenAI suggests starting around OPENAI_STARTING_CAP and lowering it).
    """
    return visible + reasoning_room(effort, visible)


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
#: Template 1's settings as the lesson writes them: a demonstration of what the API answers
#: (gpt-5-mini rejects temperature and max_tokens with a 400, and shuts down on 2026-12-11).
LESSON_SUPPORT: dict[str, Any] = {"model": LESSON_SMALL, "temperature": 0.2, "max_tokens": 300}
#: The visible reply template 1 allows (the lesson's "max tokens: 300").
SUPPORT_VISIBLE = 300
#: The sampling form (the reference solution's): the fast model at effort "none", where it takes a temperature.
SUPPORT_SAMPLING: dict[str, Any] = {"model": FAST, "reasoning_effort": "none", "temperature": 0.2,
                                    "max_completion_tokens": SUPPORT_VISIBLE}
#: The reasoning form: the fast model thinking a little (no temperature), short replies, room for reasoning.
SUPPORT_REASONING: dict[str, Any] = {"model": FAST, "reasoning_effort": "low", "verbosity": "low",
                                     "max_completion_tokens": 1_000}

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
#: Template 2's settings as the lesson writes them (gpt-5 rejects top_p and max_tokens with a 400).
LESSON_HEADLINES: dict[str, Any] = {"model": LESSON_FLAGSHIP, "temperature": 1.0, "top_p": 0.9, "max_tokens": 100}
#: The visible output template 2 allows: five short headlines.
HEADLINES_VISIBLE = 100
#: The sampling form (the reference solution's): the everyday model at effort "none", the strongest
#: role that still takes temperature and top_p.
HEADLINE_SAMPLING: dict[str, Any] = {"model": DEFAULT, "reasoning_effort": "none", "temperature": 1.0, "top_p": 0.9,
                                     "max_completion_tokens": HEADLINES_VISIBLE}
#: The reasoning form: the flagship (which takes no temperature at all), low effort, short output, room for reasoning.
HEADLINE_REASONING: dict[str, Any] = {"model": FLAGSHIP, "reasoning_effort": "low", "verbosity": "low",
                                      "max_completion_tokens": 2_000}

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
    """The temperature demo's request: one short headline, at effort "none" and ``temperature``."""
    messages = [{"role": "system", "content": HEADLINE_SYSTEM}, {"role": "user", "content": ONE_HEADLINE_BRIEF}]
    return {"model": HEADLINE_SAMPLING["model"], "messages": messages, "reasoning_effort": "none",
            "temperature": temperature, "max_completion_tokens": 30}


# --------------------------------------------------------------------------- template 3: financial analysis (accuracy)
#: The quarter's data set (in data/), made by data/make_financials.py.
DATA_FILE = "financials_q3_2025.csv"
ANALYSIS_QUESTION = (
    "Question: what was the Q3 2025 net profit margin (net profit = total revenue minus total "
    "expenses, as a percentage of total revenue), and which three expense categories cost the most "
    "over the quarter?"
)
#: The JSON Schema of template 3's reply.
ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["steps", "total_revenue", "total_expenses", "net_profit", "net_profit_margin_pct", "top_expense_categories"],
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
}
#: A ready-made Structured Outputs format for Chat Completions: pass it as response_format.
ANALYSIS_FORMAT: dict[str, Any] = {"type": "json_schema",
                                   "json_schema": {"name": "q3_analysis", "strict": True, "schema": ANALYSIS_SCHEMA}}
#: The same for the Responses API: pass it as text={"format": ANALYSIS_TEXT_FORMAT}.
ANALYSIS_TEXT_FORMAT: dict[str, Any] = {"type": "json_schema", "name": "q3_analysis", "strict": True, "schema": ANALYSIS_SCHEMA}
#: The course's wording of template 3's system message (exercise 02 asks you to write your own).
ANALYSIS_SYSTEM = (
    "Act as a senior financial analyst reviewing one quarter's figures. Work methodically: total each "
    "revenue line and each expense category over the quarter, then compute net profit and the net "
    "profit margin. Show your work as numbered steps, each with the figures it uses. State only what "
    "the data shows: no estimates, assumptions or speculation. Return the result as a JSON object."
)
#: Template 3's settings as the lesson writes them (o1 was shut down on 2026-10-23: 404 model_not_found).
LESSON_ANALYSIS: dict[str, Any] = {"model": LESSON_REASONING, "temperature": 0.0, "max_tokens": 1500}
#: The visible analysis template 3 allows at least (the lesson's "max tokens: 1500").
ANALYSIS_VISIBLE = 1_500
#: The reasoning form (the reference solution's): the reasoning model at medium effort, a cap with
#: OpenAI's suggested starting room, and the schema.
ANALYSIS_REASONING: dict[str, Any] = {"model": REASONING, "reasoning_effort": "medium",
                                      "max_completion_tokens": OPENAI_STARTING_CAP, "response_format": ANALYSIS_FORMAT}
#: The same task at high effort: more reasoning tokens, the same answer (notebook 02 compares them).
ANALYSIS_HIGH: dict[str, Any] = {**ANALYSIS_REASONING, "reasoning_effort": "high"}
#: The lesson's "temperature 0" lever, which today only a model at effort "none" takes: no reasoning at all,
#: so not an accuracy setting (notebook 02 shows it for comparison).
ANALYSIS_NO_REASONING: dict[str, Any] = {"model": DEFAULT, "reasoning_effort": "none", "temperature": 0,
                                         "max_completion_tokens": 2_000, "response_format": ANALYSIS_FORMAT}

#: The lesson's stated inputs for one report's cost.
REPORT_TOKENS = 1_500
LESSON_PRICE_T3 = lesson_price_per_1k(LESSON_REASONING)  # $0.15 per 1K tokens, as the lesson states
#: The lesson's report covers this many data points (our data set has 27 rows).
LESSON_DATA_POINTS = 5_000


def load_financials() -> str:
    """The quarter's data set as CSV text."""
    return (data_dir() / DATA_FILE).read_text(encoding="utf-8")


def analysis_user_message(csv_text: str) -> str:
    """Template 3's user message: the data set, then the question (offline, the recordings are found by it)."""
    return f"Dataset (Q3 2025, USD, one row per month and line):\n{csv_text.strip()}\n\n{ANALYSIS_QUESTION}"


def analysis_messages(csv_text: str, role: str = "developer") -> list[dict[str, str]]:
    """ANALYSIS_SYSTEM as a developer (or system) message, then analysis_user_message(csv_text)."""
    return [{"role": role, "content": ANALYSIS_SYSTEM}, {"role": "user", "content": analysis_user_message(csv_text)}]


# --------------------------------------------------------------------------- the contract (what the checks grade)

#: Template 1 wants a model cheap enough for thousands of tickets a day: output at most this many USD per 1M tokens.
CHEAP_OUTPUT_MAX = 2.00
#: Template 2 wants a full-size model for creative quality: output priced at least as the everyday
#: model's (the DEFAULT role); the cheap tier is for volume, not for copy.
CREATIVE_PRICE_ROLE = DEFAULT
#: Consistency: the highest temperature (at effort "none"), or the reasoning efforts that keep replies uniform.
CONSISTENCY_MAX_TEMPERATURE = 0.2
CONSISTENCY_EFFORTS = ("minimal", "low")
#: Creativity: the temperature range (above 1.5 sampling draws so many unlikely tokens that copy
#: turns incoherent) and top_p (nucleus sampling: 1 keeps every token, 0.9 trims only the unlikely
#: tail; lower values narrow the word choice, the opposite of what template 2 wants).
CREATIVE_TEMPERATURE = (1.0, 1.5)
CREATIVE_TOP_P = (0.8, 1.0)
#: Accuracy: a reasoning model actually reasoning, at least at this effort (every current model's default).
ACCURACY_MIN_EFFORT = "medium"
ACCURACY_EFFORTS = EFFORTS[EFFORTS.index(ACCURACY_MIN_EFFORT):]
#: The output caps at effort "none" (no reasoning: the cap is the visible answer): (least, most).
#: The least keeps the answer whole; the most is the template's cost control. Template 3 has no most.
CAPS: dict[str, tuple[int, int | None]] = {
    "support": (150, SUPPORT_VISIBLE),
    "headlines": (60, HEADLINES_VISIBLE),
    "analysis": (ANALYSIS_VISIBLE, None),
}
#: The visible answer each template plans for (a reasoning model's cap adds reasoning_room on top).
VISIBLE = {"support": SUPPORT_VISIBLE, "headlines": HEADLINES_VISIBLE, "analysis": ANALYSIS_VISIBLE}
#: The output-cap parameter of each API; max_tokens is deprecated and rejected by every current model.
CAP_PARAMS = {"chat": "max_completion_tokens", "responses": "max_output_tokens"}

#: How a reply may list its headlines, one per line: a numbering marker (a number, then "." or ")")
#: or a bullet, then a space; the headline may be wrapped in straight or curly double quotes; blank
#: lines may separate them. headlines() returns each headline without these, and with nothing else cut.
HEADLINE_NUMBERING = (".", ")")
HEADLINE_BULLETS = ("-", "*", "\u2022")
HEADLINE_QUOTES = (('"', '"'), ("\u201c", "\u201d"))
#: Headlines a reply may hold: punctuation, digits and quotes inside a headline are part of it.
HEADLINE_SAMPLES = (
    "Your Sales Managers Weren't Hired to Type. Stop Making Them.",
    "Manual Data Entry: The Silent Killer of Your Pipeline",
    "500 Reps, Zero Manual Data Entry",
    "3 Hours a Day in the CRM? Not Anymore.",
    'Stop Saying "I\'ll Update the CRM Later"',
    "Quota Is Won on Calls - Not in Spreadsheets",
    "Ça suffit: no more copy-pasting deals \u2014 really \U0001f680",
    "Every Keystroke in the CRM Is a Call Not Made",
    "Fire the Spreadsheet. Keep Your Best Sales Reps.",
    "CRM Hygiene Without the Busywork (Finally)",
    "Sell More, Type Less",
    "1,000 Deals a Quarter. 0 Hours of Data Entry.",
    "2.5x More Selling Time. Zero Data Entry.",
)
#: Inputs the checks send through your builders and send functions: quotes, SQL metacharacters,
#: unicode, line breaks, and a very long input. Your code must pass each on exactly as given.
ADVERSARIAL_INPUTS = (
    'He wrote "refund it NOW" and I\'m still waiting.',
    "Robert'); DROP TABLE tickets;-- charged twice",
    "Zahlung doppelt abgebucht \u2013 bitte pr\u00fcfen \u2713 \u91cd\u590d\u6263\u6b3e \U0001f64f",
    "line one\nline two\n\n  indented line three",
    "$129 \u00d7 2 = $258 (100% wrong) {braces} <tag> \\backslash %s {0}",
    "month,type,category,amount_usd\n2025-07,revenue,\"Subscriptions, annual\",387877",
    "charged twice. " * 2_000,
)

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
