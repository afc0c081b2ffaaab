"""Replay for exercises whose learners write their own system messages.

A learner's own wording of a system message never matches a recording byte for byte. Offline,
:func:`replay_client` answers it through the course simulator (:mod:`labkit.simulate`): the
course's recorded answer for the same task (the same last user message), with the model, usage
and ids computed for the request actually sent, labelled ``simulated`` by ``labkit.provenance``.
A request the real API would reject gets the API's error. Recordings made only to give a check's
mutant a bad answer answer their exact request only. Checks use :func:`replay_only`, which never
goes live.
"""

from __future__ import annotations

from typing import Any

import openai

from .lint import lint_request
from .modes import client, current_mode


def replay_client(*cassettes: str) -> openai.OpenAI:
    """A client for your exercise code: offline, your own system-message wording gets the course's answer.

    With a key set this is simply ``labkit.client(cassettes[0])``.
    """
    if current_mode() != "replay":
        return client(cassettes[0])
    return replay_only(*cassettes)


def replay_only(*cassettes: str) -> openai.OpenAI:
    """Always replay (with the simulator), whatever the environment: checks never go live."""
    return client(list(cassettes), mode="replay", simulate=True)


def api_errors(request: dict[str, Any]) -> list[Any]:
    """What ``labkit.lint_request`` says the real API would reject in this request (errors only)."""
    return [f for f in lint_request(**request) if f.severity == "error"]
