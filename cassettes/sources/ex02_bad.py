"""Exercise 02's checks: deliberately bad answers (authored, labelled), each keyed by a distinct request that one of tests/mutants/ex02.toml sends.

Kept apart from ex02.json so re-recording notebook 02 with a key never removes them. Their labels
start with "deliberately bad", so replay serves each only to its exact request, and the course
simulator never uses them. The bad inputs themselves are in labkit/course/ex02.py.
"""

from __future__ import annotations

import json

from ex02 import analysis

from labkit.course.ex02 import (
    ANALYSIS_REASONING,
    HEADLINE_SAMPLING,
    HEADLINE_SYSTEM,
    HR_BRIEF,
    LOOSE_SUPPORT_SYSTEM,
    NO_PAIN_BRIEF,
    SPECULATIVE_SYSTEM,
    SUPPORT_EMAIL,
    SUPPORT_SAMPLING,
    analysis_user_message,
    load_financials,
)

BAD_SUPPORT_REPLY = (
    "Hey! So sorry about that!! No worries, we'll refund the full $258 for both charges today, "
    "you should see it on your card in 2-3 days. Cheers!"
)
HR_HEADLINES = (
    "1. Onboarding Paperwork Is Eating Your HR Team Alive\n"
    "2. Stop Retyping New-Hire Forms by Hand\n"
    "3. Your People Team Deserves Better Than Manual Forms\n"
    "4. Still Chasing Signatures? Let AI Do It.\n"
    "5. HR Admin in Minutes, Not Days"
)
NO_PAIN_HEADLINES = (
    "1. Forecast Every Deal With Confidence\n"
    "2. Your Pipeline, Finally Predictable\n"
    "3. Coach Your Reps With AI Insights That Land\n"
    "4. Close Bigger Deals in Fewer Days\n"
    "5. Sales Leaders Deserve Smarter Dashboards"
)


def _headlines(brief: str) -> dict:
    return {**HEADLINE_SAMPLING, "messages": [{"role": "system", "content": HEADLINE_SYSTEM}, {"role": "user", "content": brief}]}


def build(a) -> None:
    csv_text = load_financials()
    bad_t1 = {**SUPPORT_SAMPLING, "temperature": 1.0,
              "messages": [{"role": "system", "content": LOOSE_SUPPORT_SYSTEM}, {"role": "user", "content": SUPPORT_EMAIL}]}
    a.call(lambda c: c.chat.completions.create(**bad_t1), BAD_SUPPORT_REPLY,
           label="deliberately bad: a loose system message at temperature 1.0, a casual reply promising a $258 refund")
    a.call(lambda c: c.chat.completions.create(**_headlines(HR_BRIEF)), HR_HEADLINES,
           label="deliberately bad: a brief aimed at HR managers")
    a.call(lambda c: c.chat.completions.create(**_headlines(NO_PAIN_BRIEF)), NO_PAIN_HEADLINES,
           label="deliberately bad: a brief without the pain point")
    bad_t3 = {**ANALYSIS_REASONING, "messages": [
        {"role": "developer", "content": SPECULATIVE_SYSTEM}, {"role": "user", "content": analysis_user_message(csv_text)}]}
    data = json.loads(analysis(csv_text))
    data["steps"] = [
        "Revenue seems to be around $1.41 million for the quarter, probably driven by subscriptions.",
        "Expenses are likely about $1.21 million, so net profit could be roughly $200,416.",
        "The margin might be 14.18%, though I guess seasonality may change that.",
    ]
    a.call(lambda c: c.chat.completions.create(**bad_t3), json.dumps(data, ensure_ascii=False),
           label="deliberately bad: a loose prompt that invites opinion, speculative wording")
