"""Authored exchanges that exercise every endpoint shape labkit replays (tests and benches use them)."""

from __future__ import annotations

from pydantic import BaseModel

from labkit.course import models

MODEL = models.FAST
REASONING_MODEL = models.DEFAULT  # runs at its default effort (medium): reasoning tokens
HELLO = [
    {"role": "system", "content": "You are a concise assistant for a software course."},
    {"role": "user", "content": "Say hello to a new learner in one sentence."},
]


class Triage(BaseModel):
    category: str
    urgent: bool


def build(a) -> None:
    a.call(
        lambda c: c.chat.completions.create(model=MODEL, messages=HELLO),
        "Welcome aboard! You'll be calling the OpenAI API from your own code in no time.",
        label="plain chat completion",
    )
    a.call(
        lambda c: c.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
        ),
        "Hello and welcome: let's make your first request together.",
        label="streamed chat completion",
    )
    ticket = [{"role": "user", "content": "Ticket: 'I was charged twice this month, please fix it today.'"}]
    a.call(
        lambda c: c.chat.completions.parse(model=MODEL, messages=ticket, response_format=Triage),
        '{"category":"billing","urgent":true}',
        label="structured output via parse",
    )
    a.call(
        lambda c: c.responses.create(model=REASONING_MODEL, input="Name one benefit of retries with jitter."),
        "Jitter spreads retries out so many clients do not hit the server at the same instant.",
        reasoning="The user asks for a benefit of jitter. Main point: it avoids synchronized retry storms.",
        label="responses API with a reasoning model",
    )
    a.call(
        lambda c: list(c.responses.create(model=REASONING_MODEL, input="Say 'ready' if you can hear me.", stream=True)),
        "ready",
        reasoning="Simple confirmation.",
        label="streamed responses API",
    )
    a.call(
        lambda c: c.responses.parse(model=MODEL, input=ticket[0]["content"], text_format=Triage),
        '{"category":"billing","urgent":true}',
        label="structured output via responses.parse",
    )
    for reply in ("Red", "Teal", "Amber"):
        a.call(
            lambda c: c.chat.completions.create(
                model=MODEL, temperature=1.2, reasoning_effort="none",
                messages=[{"role": "user", "content": "Pick a colour. One word."}],
            ),
            reply,
            label="one of three authored variations of the same request",
        )
    a.call(
        lambda c: c.chat.completions.create(
            model=REASONING_MODEL, temperature=0.2, max_tokens=300, messages=HELLO
        ),
        error={
            "status": 400,
            "message": "Unsupported value: 'temperature' does not support 0.2 with this model at reasoning effort 'medium'. Only the default (1) value is supported; set reasoning_effort to 'none' to use temperature.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        },
        label="the API rejects temperature on a reasoning model",
    )
