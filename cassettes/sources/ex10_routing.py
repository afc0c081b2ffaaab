"""Notebook 10 and exercise 10's routing: lesson 05's classifier on the small model with logprobs, and the large model (authored answers).

For every email of the routing slice (``routing_emails()``: lesson 05's first 60 and every hard
case) two requests, sent by the reference solution's ``evaluate_routing`` through the real SDK:
lesson 05's ``request_for`` with ``logprobs`` on the small model, and the same request on the
large model. The small model's answers are lesson 05's own (``cassettes/sources/ex05.py``: the
label, a seeded ~6% plausible disagreements, a few hard cases gone wrong), so the same
classifier gives the same answers here. Its confidence in each label is authored, seeded, and
the token logprobs are derived from it (``labkit.authoring.token_logprobs``): a label the answer
gets wrong is usually uncertain (probability 0.45 to 0.85) but a quarter of the time confidently
wrong (0.90 to 0.97), as real classifiers are; a right label is usually sure (0.93 to 0.999),
with ~6% of emails unsure of one right label (escalated for nothing). The large model answers
the label, except a seeded ~2% of plausible disagreements.
"""

from __future__ import annotations

import json
import random
from typing import Any

from ex05 import NEIGHBOURS, _emails, authored

from labkit.checks import load_learner_module
from labkit.course import ex10 as course
from labkit.course.ex05 import FIELDS
from labkit.paths import solutions_dir

sol = load_learner_module(solutions_dir() / "ex10_production.py")

SEED = 1010
#: Share of the small model's wrong labels it is nonetheless sure of.
CONFIDENTLY_WRONG = 0.25
#: Share of emails where the small model is unsure of one label it got right.
UNSURE_BUT_RIGHT = 0.06
#: Share of emails where the large model disagrees with the label on one field.
LARGE_DISAGREES = 0.02


def confidences(records: list[dict[str, Any]], replies: dict[str, str]) -> dict[str, dict[str, float]]:
    """The small model's probability for each label it gave, by email id (seeded)."""
    rng = random.Random(SEED)
    out = {}
    for r in records:
        given = json.loads(replies[r["id"]])
        unsure = rng.random() < UNSURE_BUT_RIGHT
        unsure_field = FIELDS[int(rng.random() * len(FIELDS))]
        probs = {}
        for name in FIELDS:
            roll = rng.random()
            if given[name] != r["label"][name]:
                probs[name] = round(0.90 + 0.07 * roll, 3) if rng.random() < CONFIDENTLY_WRONG else round(0.45 + 0.4 * roll, 3)
            elif unsure and name == unsure_field:
                probs[name] = round(0.6 + 0.29 * roll, 3)
            else:
                probs[name] = round(0.93 + 0.069 * roll, 3)
        out[r["id"]] = probs
    return out


def large_reply(record: dict[str, Any], rng: random.Random) -> str:
    """The large model's answer: the label, rarely a plausible neighbour on one field; the generator's gist."""
    answer = dict(record["label"])
    if rng.random() < LARGE_DISAGREES:
        name = FIELDS[int(rng.random() * len(FIELDS))]
        options = NEIGHBOURS[name][answer[name]]
        answer[name] = options[int(rng.random() * len(options))]
    return json.dumps({**answer, "summary": record["gist"]}, ensure_ascii=False, separators=(",", ":"))


def build(a: Any) -> None:
    records = _emails()
    replies = {i: reply for i, (reply, _note) in authored(records).items()}
    wanted = {e["id"] for e in course.routing_emails()}
    chosen = [r for r in records if r["id"] in wanted]
    sure = confidences(chosen, replies)
    rng = random.Random(SEED + 1)
    large = {r["id"]: large_reply(r, rng) for r in chosen}
    emails = course.routing_emails()
    turns = []
    for email in emails:  # route_email: the small model, then the large one when unsure
        small = json.loads(replies[email["id"]])
        turns.append({"reply": replies[email["id"]], "confidence": sure[email["id"]],
                      "label": f"{email['id']} on the small model, with logprobs (labels' probabilities {sure[email['id']]})"})
        if min(sure[email["id"]].values()) < course.CONTRACT.escalate_below:
            wrong = [f for f in FIELDS if small[f] != email["label"][f]]
            turns.append({"reply": large[email["id"]], "label": f"{email['id']} escalated to the large model"
                          + (f" (the small model had {', '.join(wrong)} wrong)" if wrong else " (the small model was right)")})
    for email in emails:  # the baseline: every email on the large model
        turns.append({"reply": large[email["id"]], "label": f"{email['id']} on the large model (always-large baseline)"})
    a.turns(lambda c: sol.evaluate_routing(c, emails), turns)
