"""Exercise 05 and notebook 05: email classifications with Structured Outputs, in both APIs (authored answers).

The emails of ``responses_pool()`` (the first 60 of ``data/emails.jsonl`` and every hard case:
the ones exercise 05's checks and the notebook's demonstrations send) get one
``chat.completions.parse`` request and one ``responses.parse`` request each, sent through the
real SDK exactly as ``request_for()`` and ``responses_request_for()`` in
``labkit/course/ex05.py`` build them, so exercise 05 may use either API; the other emails are
in ``ex05_inbox.json`` (Chat Completions only, for the notebook's full run and
bench/batch.py). Keeping this cassette small keeps ``labkit check ex05`` fast. The authored answer is the
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
    EFFORT_COMPARISON,
    EMAILS_FILE,
    FIELDS,
    REFUSAL,
    REFUSED_EMAIL,
    TRUNCATED_EMAIL,
    TRUNCATED_REPLY,
    demo_email,
    effort_request,
    email_generator,
    lesson_request,
    request_for,
    responses_pool,
    responses_request_for,
    sampling_request,
)
from labkit.paths import data_dir
from labkit.simulate import api_error_for

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


def reply_for(record: dict[str, Any], answer: dict[str, str]) -> str:
    """The model's JSON answer: the authored fields and the generator's gist as the summary."""
    return json.dumps({**answer, "summary": record["gist"]}, ensure_ascii=False, separators=(",", ":"))


def authored(records: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Email id -> (the model's reply, the label's note on where it departs from the ground truth)."""
    return {r["id"]: (reply_for(r, answer), note) for r, (answer, note) in zip(records, answers(records))}


def build(a) -> None:
    records = _emails()
    replies = authored(records)
    for r in responses_pool(records):
        reply, note = replies[r["id"]]
        a.call(lambda c, r=r: c.chat.completions.parse(**request_for(r)), reply, label=r["id"] + note)
        a.call(lambda c, r=r: c.responses.parse(**responses_request_for(r)), reply,
               label=f"{r['id']} through the Responses API{note}")
    build_truncated(a)
    build_notebook_extras(a, records, {i: reply for i, (reply, _) in replies.items()})
    build_refused(a)  # last: the recordings before it keep their ids


def build_truncated(a) -> None:
    """An answer the output limit cut off, in both APIs: parse() cannot read it, and a retry would end the same way."""
    a.call(lambda c: c.chat.completions.create(**{**request_for(TRUNCATED_EMAIL), "response_format": _wire_format()}),
           TRUNCATED_REPLY, finish_reason="length", label="em-cutoff: the summary ran past the output limit")
    a.call(lambda c: c.responses.create(**_responses_wire(TRUNCATED_EMAIL)), TRUNCATED_REPLY,
           label="em-cutoff through the Responses API: cut off at max_output_tokens")
    _mark_incomplete(a.items[-1])


def build_refused(a) -> None:
    """A refusal, in both APIs: the parsed answer is None, and the same request would be declined again."""
    a.call(lambda c: c.chat.completions.parse(**request_for(REFUSED_EMAIL)), refusal=REFUSAL,
           label="em-refused: the model declines to classify")
    a.call(lambda c: c.responses.parse(**responses_request_for(REFUSED_EMAIL)), refusal=REFUSAL,
           label="em-refused through the Responses API: a refusal content part")


def _wire_format() -> dict[str, Any]:
    """response_format as chat.completions.parse sends it (create() would not parse the cut-off answer)."""
    from openai.lib._parsing._completions import type_to_response_format_param

    from labkit.course.ex05 import Classification

    return dict(type_to_response_format_param(Classification))  # type: ignore[arg-type]


def _responses_wire(email: dict[str, Any]) -> dict[str, Any]:
    """responses_request_for as responses.parse sends it (text.format instead of text_format)."""
    from openai.lib._parsing._responses import type_to_text_format_param

    request = dict(responses_request_for(email))
    request["text"] = {"format": type_to_text_format_param(request.pop("text_format"))}
    return request


def _mark_incomplete(item: dict[str, Any]) -> None:
    """A Responses answer cut off at max_output_tokens says so: status incomplete, with the reason."""
    response = json.loads(item["response"]["body"]["string"])
    response["status"] = "incomplete"
    response["incomplete_details"] = {"reason": "max_output_tokens"}
    for output in response["output"]:
        if output.get("type") == "message":
            output["status"] = "incomplete"
    item["response"]["body"]["string"] = json.dumps(response, indent=2, ensure_ascii=False)


def build_notebook_extras(a, records: list[dict[str, Any]], replies: dict[str, str]) -> None:
    """Notebook 05's demonstrations: the lesson's request, free text, JSON mode, and the effort comparison."""
    email = demo_email(records)
    request = lesson_request(email)
    a.call(lambda c: c.chat.completions.create(**request), error=api_error_for(request),
           label="the lesson's request, as written (the error the API gives on the course date; authored)")
    label = email["label"]
    fenced = json.dumps({**label, "summary": email["gist"]}, indent=2)
    a.call(
        lambda c: c.chat.completions.create(**sampling_request(email)),
        f"Here is the analysis of the email:\n\n```json\n{fenced}\n```",
        label="the lesson's prompt on the fast model at effort none: JSON inside prose (authored)",
    )
    a.call(
        lambda c: c.chat.completions.create(**sampling_request(email, json_mode=True)),
        json.dumps({"sentiment": "negative", "urgency": "urgent", "category": "Billing", "summary": email["gist"]}),
        label="JSON mode: valid JSON, wrong values (authored)",
    )
    for effort in EFFORT_COMPARISON:
        if effort != "none":  # effort none is request_for itself, recorded above
            a.call(lambda c, effort=effort: c.chat.completions.parse(**effort_request(email, effort)), replies[email["id"]],
                   label=f"{email['id']} at reasoning effort {effort} (authored; reasoning tokens derived from the effort)")
