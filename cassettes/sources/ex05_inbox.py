"""Notebook 05's full run and bench/batch.py: the rest of the inbox, classified through Chat Completions (authored answers).

The emails of ``data/emails.jsonl`` outside ``responses_pool()`` (``ex05.json`` holds those, in
both APIs), each with one ``chat.completions.parse`` request exactly as ``request_for()`` in
``labkit/course/ex05.py`` builds it, answered as ``cassettes/sources/ex05.py`` authors every
answer (the label, a seeded ~6% plausible disagreements, the generator's gist as the summary).
"""

from ex05 import _emails, authored

from labkit.course.ex05 import request_for, responses_pool


def build(a) -> None:
    records = _emails()
    replies = authored(records)
    graded = {r["id"] for r in responses_pool(records)}
    for r in records:
        if r["id"] not in graded:
            reply, note = replies[r["id"]]
            a.call(lambda c, r=r: c.chat.completions.parse(**request_for(r)), reply, label=r["id"] + note)
