"""Replay for exercises whose learners write their own system messages.

A learner's own wording of a system message will never match a recording byte for byte. Offline,
:func:`replay_client` answers it with the course's recording for the same endpoint and the same
last user message (the customer email, the brief, the data set), reported as ``closest`` by
``labkit.provenance``. A request the real API would reject (``labkit.lint_request`` finds an
error) gets no answer, and recordings labelled as deliberately bad (made for the checks' mutants)
answer only their exact request. Checks use :func:`replay_only`, which never goes live.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx2
import openai

from .lint import lint_request
from .modes import REPLAY_KEY, current_mode
from .replay import Cassette, Interaction, ReplayTransport, Tier, describe_difference

#: Labels of authored recordings that exist only to give a check's mutant a bad answer.
BAD_LABEL = "deliberately bad"


class CourseReplay(ReplayTransport):
    """Replay that also answers a learner's own wording of the system message.

    Tiers: an exact recording first; else, if the request is one the real API accepts, the
    course's recording for the same endpoint and the same last user message (preferring the same
    messages, then the same model), reported as ``closest``. Recordings labelled as deliberately
    bad answer exact requests only. Every request body sent is kept in ``sent``.
    """

    def __init__(self, cassettes: Iterable[str | Path]) -> None:
        super().__init__(cassettes, loose=False)
        self.sent: list[Any] = []

    def _answer(self, request: httpx2.Request, raw: bytes) -> httpx2.Response:
        self.sent.append(_json(raw))
        return super()._answer(request, raw)

    def _find(self, method: str, path: str, canonical: str) -> tuple[Cassette, Interaction, Tier, str] | None:
        hit = super()._find(method, path, canonical)
        if hit is not None:
            return hit
        body = _json(canonical)
        if not isinstance(body, dict) or api_errors(body):
            return None
        user = _last_user(body)
        best: tuple[int, Cassette, Interaction] | None = None
        for cassette in self.cassettes:
            for inter in cassette.interactions:
                rec = inter.body
                if (inter.method, inter.path, inter.status) != (method, path, 200) or not isinstance(rec, dict):
                    continue
                if inter.label.startswith(BAD_LABEL) or bool(rec.get("stream")) != bool(body.get("stream")):
                    continue
                if user is None or _last_user(rec) != user:
                    continue
                score = 2 * (rec.get("messages") == body.get("messages")) + (rec.get("model") == body.get("model"))
                if best is None or score > best[0]:
                    best = (score, cassette, inter)
        if best is None:
            return None
        _, cassette, inter = best
        return cassette, inter, "closest", describe_difference(body, inter.body)

    def _miss_message(self, method: str, path: str, canonical: str) -> str:
        body = _json(canonical)
        errors = api_errors(body) if isinstance(body, dict) else []
        if errors:
            codes = ", ".join(f.code for f in errors)
            return (f"The real API would reject this request (400: {codes}), so replay does not answer it. "
                    f"{errors[0].message} (labkit.lint_request(**request) lists every problem.)")
        return super()._miss_message(method, path, canonical)


def replay_client(*cassettes: str) -> openai.OpenAI:
    """A client for your exercise code: offline, your own system-message wording gets the course's recording.

    In replay mode the answer is the recording for the same endpoint and user message (labelled
    "closest" by ``labkit.provenance``); with a key set this is simply ``labkit.client(cassettes[0])``.
    """
    from .modes import client

    if current_mode() != "replay":
        return client(cassettes[0])
    return replay_only(*cassettes)


def replay_only(*cassettes: str) -> openai.OpenAI:
    """Always replay, whatever the environment (checks never go live); the transport is ``made._labkit_transport``."""
    transport = CourseReplay(cassettes)
    made = openai.OpenAI(api_key=REPLAY_KEY, base_url="https://api.openai.com/v1",
                         http_client=httpx2.Client(transport=transport))
    made._labkit_transport = transport  # type: ignore[attr-defined]
    return made


def api_errors(request: dict[str, Any]) -> list[Any]:
    """What ``labkit.lint_request`` says the real API would reject in this request (errors only)."""
    return [f for f in lint_request(**request) if f.severity == "error"]


def _json(text: str | bytes) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _last_user(body: dict[str, Any]) -> str | None:
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return None
    users = [m.get("content") for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
    return users[-1] if users and isinstance(users[-1], str) else None

