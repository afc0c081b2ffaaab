"""Exercise 01 and notebook 01: the first chat completion (authored answer)."""

from __future__ import annotations

from labkit.course.ex01 import MESSAGES, MODEL, PROMPT, SYSTEM

ANSWER = "Cut Project Chaos by 30%: See How Teams Ship On Time"


def build(a) -> None:
    a.call(lambda c: c.chat.completions.create(model=MODEL, messages=MESSAGES), ANSWER, label="the first API call")
    a.call(
        lambda c: c.responses.create(model=MODEL, instructions=SYSTEM, input=PROMPT),
        ANSWER,
        label="the first call, through the Responses API",
    )
