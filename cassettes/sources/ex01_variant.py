"""Exercise 01, hidden check: the same request with a different authored answer, to tell real calls from hard-coded ones."""

from __future__ import annotations

from labkit.course.ex01 import MESSAGES, MODEL


def build(a) -> None:
    a.call(
        lambda c: c.chat.completions.create(model=MODEL, messages=MESSAGES),
        "Your Team's Deadlines, Finally Under Control: A 15-Minute Demo",
        label="variant answer used by a hidden check",
    )
