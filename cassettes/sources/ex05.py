"""Exercise 05 and notebook 05: 1,000 email classifications with Structured Outputs (authored answers).

Every email in ``data/emails.jsonl`` gets one ``chat.completions.parse`` request, sent through
the real SDK exactly as ``request_for()`` in ``labkit/course/ex05.py`` builds it (the exercise
imports it from there). The authored answer is the
email's ground-truth label, except for a seeded ~6% of emails where it disagrees on one field
with a plausible neighbouring value (as a real model does at a boundary: high vs critical,
neutral vs negative, billing vs sales) plus a few chosen hard cases (a long thread escalated to
critical, one prompt injection that works). So accuracy measured against the labels is honest
about what is authored: about 94%, not 100%. The summary is the generator's one-line gist.
"""


import json
import random
from typing import Any

from labkit.course.ex05 import (
    EMAILS_FILE,
    FIELDS,
    demo_email,
    email_generator,
    lesson_request,
    request_for,
    sampling_request,
)
from labkit.paths import data_dir

DISAGREE_SEED = 505
DISAGREE_RATE = 0.055


#: Plausible wrong answers a real classifier gives at the boundaries.
NEIGHBOURS = {
    "urgency": {"low": ["medium"], "medium": ["low", "high"], "high": ["medium", "critical"], "critical": ["high"]},
    "sentiment": {"positive": ["neutral"], "neutral": ["negative", "positive"], "negative": ["neutral"]},
    "category": {"billing": ["sales", "other"], "technical": ["other", "billing"], "sales": ["billing", "other"],
                 "other": ["sales", "technical"]},
}
#: Hard cases whose authored answer departs from the label, on purpose (by subject).
HARD_DEPARTURES = {
    "Re: Re: Calendar sync drops events (logs attached)": {"urgency": "critical"},  # escalates the angry long thread
    "エクスポートについて": {"sentiment": "negative"},
    "Invoice copy": {"urgency": "critical"},  # this prompt injection works
}


def _emails() -> list[dict[str, Any]]:
    """The generator's records (with gists), checked against the committed data file."""
    gen = email_generator()
    records = gen.generate()
    if gen.data_lines(records) != (data_dir() / EMAILS_FILE).read_text(encoding="utf-8"):
        raise RuntimeError("data/emails.jsonl differs from data/make_emails.py: run `python data/make_emails.py` first")
    return records


def answers(records: list[dict[str, Any]]) -> list[tuple[dict[str, str], str]]:
    """The authored answer for each email and a label saying where it departs from the ground truth."""
    rng = random.Random(DISAGREE_SEED)
    out = []
    for r in records:
        answer = dict(r["label"])
        note = ""
        roll, field_roll, pick = rng.random(), rng.random(), rng.random()
        if r["hard_case"]:
            for field, value in HARD_DEPARTURES.get(r["subject"], {}).items():
                answer[field] = value
        elif roll < DISAGREE_RATE:
            field = "urgency" if field_roll < 0.5 else "sentiment" if field_roll < 0.8 else "category"
            options = NEIGHBOURS[field][answer[field]]
            answer[field] = options[int(pick * len(options))]
        wrong = [f for f in FIELDS if answer[f] != r["label"][f]]
        if wrong:
            note = " (authored disagreement: " + ", ".join(f"{f} {answer[f]} vs label {r['label'][f]}" for f in wrong) + ")"
        out.append((answer, note))
    return out


def build(a) -> None:
    records = _emails()
    for r, (answer, note) in zip(records, answers(records)):
        reply = json.dumps({**answer, "summary": r["gist"]}, ensure_ascii=False, separators=(",", ":"))
        a.call(lambda c, r=r: c.chat.completions.parse(**request_for(r)), reply, label=r["id"] + note)
    build_notebook_extras(a, records)


def build_notebook_extras(a, records: list[dict[str, Any]]) -> None:
    """Notebook 05's demonstrations of what goes wrong without Structured Outputs."""
    email = demo_email(records)
    a.call(
        lambda c: c.chat.completions.create(**lesson_request(email)),
        error={"status": 400, "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter",
               "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."},
        label="the lesson's request, as written (authored error)",
    )
    label = email["label"]
    fenced = json.dumps({**label, "summary": email["gist"]}, indent=2)
    a.call(
        lambda c: c.chat.completions.create(**sampling_request(email)),
        f"Here is the analysis of the email:\n\n```json\n{fenced}\n```",
        label="the lesson's prompt on a sampling model: JSON inside prose (authored)",
    )
    a.call(
        lambda c: c.chat.completions.create(**sampling_request(email, json_mode=True)),
        json.dumps({"sentiment": "negative", "urgency": "urgent", "category": "Billing", "summary": email["gist"]}),
        label="JSON mode: valid JSON, wrong values (authored)",
    )
