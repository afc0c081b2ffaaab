"""Notebook 01: the first call (chosen effort and the model's default), the Responses API, the lesson's model."""

from __future__ import annotations

from labkit.catalog import get_model
from labkit.course.ex01 import EFFORT, MESSAGES, MODEL, PROMPT, SYSTEM
from labkit.course.models import LESSON_FLAGSHIP

ANSWER = "Cut Project Chaos by 30%: See How Teams Ship On Time"


def first_calls(a, answer: str, *, why: str) -> None:
    """The first call at the chosen effort, through each API, answered with ``answer``."""
    a.call(lambda c: c.chat.completions.create(model=MODEL, messages=MESSAGES, reasoning_effort=EFFORT), answer,
           label=f"the first API call (Chat Completions){why}")
    a.call(lambda c: c.responses.create(model=MODEL, instructions=SYSTEM, input=PROMPT, reasoning={"effort": EFFORT}),
           answer, label=f"the first call, through the Responses API{why}")


def build(a) -> None:
    first_calls(a, ANSWER, why=", at the effort chosen for a one-line task")
    a.call(
        lambda c: c.chat.completions.create(model=MODEL, messages=MESSAGES),
        ANSWER,
        label="the same call at the model's default effort (hidden reasoning tokens billed)",
    )
    lesson = get_model(LESSON_FLAGSHIP)
    a.call(
        lambda c: c.chat.completions.create(model=LESSON_FLAGSHIP, messages=MESSAGES),
        error={
            "status": 404,
            "message": f"The model `{LESSON_FLAGSHIP}` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        },
        label=f"the lesson's request as written: what the API answers from {lesson.shutdown_date}, the model's shutdown date",
    )
