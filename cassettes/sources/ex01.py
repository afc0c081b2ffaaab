"""Exercise 01 and notebook 01: the first chat completion (authored answer)."""

from __future__ import annotations

SYSTEM = "You are a helpful business assistant."
PROMPT = "Write a professional email subject line for a sales outreach about project management software."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]


def build(a) -> None:
    a.call(
        lambda c: c.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES),
        "Cut Project Chaos by 30%: See How Teams Ship On Time",
        label="the first API call",
    )
    build_notebook_extras(a)


def build_notebook_extras(a) -> None:
    """Notebook 01's other requests: the Responses API form of the same call."""
    a.call(
        lambda c: c.responses.create(model="gpt-4.1-mini", instructions=SYSTEM, input=PROMPT),
        "Cut Project Chaos by 30%: See How Teams Ship On Time",
        label="the first call, through the Responses API",
    )
