"""Exercise 02's checks: deliberately bad answers (authored, labelled), each keyed by a distinct request that one of tests/mutants/ex02.toml sends.

Kept apart from ex02.json so re-recording notebook 02 with a key never removes them. The checks'
replay client answers these only to exactly matching requests, never as a "closest" recording.
"""

from __future__ import annotations

import json

from ex02 import ANALYSIS_SAMPLING, S, analysis

BAD_SUPPORT_SYSTEM = "You are a friendly support bot for Trellis. Keep customers happy."
BAD_SUPPORT_REPLY = (
    "Hey! So sorry about that!! No worries, we'll refund the full $258 for both charges today, "
    "you should see it on your card in 2-3 days. Cheers!"
)

HR_BRIEF = S.AD_BRIEF.replace("sales admin", "HR admin").replace("sales managers", "HR managers").replace(
    "manual data entry in the CRM", "manual paperwork during onboarding")
HR_HEADLINES = (
    "1. Onboarding Paperwork Is Eating Your HR Team Alive\n"
    "2. Stop Retyping New-Hire Forms by Hand\n"
    "3. Your People Team Deserves Better Than Manual Forms\n"
    "4. Still Chasing Signatures? Let AI Do It.\n"
    "5. HR Admin in Minutes, Not Days"
)
NO_PAIN_BRIEF = S.AD_BRIEF.replace(" Pain point: hours lost to manual data entry in the CRM.", "")
NO_PAIN_HEADLINES = (
    "1. Forecast Every Deal With Confidence\n"
    "2. Your Pipeline, Finally Predictable\n"
    "3. Coach Your Reps With AI Insights That Land\n"
    "4. Close Bigger Deals in Fewer Days\n"
    "5. Sales Leaders Deserve Smarter Dashboards"
)

SPECULATIVE_SYSTEM = "You are a financial analyst. Share your view of these numbers as a JSON object."


def build(a) -> None:
    csv_text = S.load_financials()
    bad_t1 = {**S.support_request(), "temperature": 1.0,
              "messages": [{"role": "system", "content": BAD_SUPPORT_SYSTEM}, {"role": "user", "content": S.SUPPORT_EMAIL}]}
    a.call(lambda c: c.chat.completions.create(**bad_t1), BAD_SUPPORT_REPLY,
           label="deliberately bad: a loose system message, a casual reply promising a $258 refund")
    a.call(lambda c: c.chat.completions.create(**S.headline_request(HR_BRIEF)), HR_HEADLINES,
           label="deliberately bad: a brief aimed at HR managers")
    a.call(lambda c: c.chat.completions.create(**S.headline_request(NO_PAIN_BRIEF)), NO_PAIN_HEADLINES,
           label="deliberately bad: a brief without the pain point")
    t3 = S.analysis_request(csv_text)
    bad_t3 = {**ANALYSIS_SAMPLING, "temperature": 1.0, "response_format": t3["response_format"],
              "messages": [{"role": "system", "content": SPECULATIVE_SYSTEM}, t3["messages"][1]]}
    data = json.loads(analysis(csv_text)[0])
    data["steps"] = [
        "Revenue seems to be around $1.41 million for the quarter, probably driven by subscriptions.",
        "Expenses are likely about $1.21 million, so net profit could be roughly $200,416.",
        "The margin might be 14.18%, though I guess seasonality may change that.",
    ]
    a.call(lambda c: c.chat.completions.create(**bad_t3), json.dumps(data, ensure_ascii=False),
           label="deliberately bad: a loose prompt at temperature 1.0, speculative wording")
