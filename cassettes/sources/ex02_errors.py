"""Notebook 02: the lesson's three requests as written, and what the API answers them on 1 December 2026 (authored recordings of the documented error format).

gpt-5-mini and gpt-5 are still served until their shutdown on 2026-12-11, but reject the lesson's
sampling parameters and max_tokens with a 400; o1 was shut down on 2026-10-23, so every request for
it gets 404 model_not_found. The last exchanges show why swapping only the model id is not a
migration: the course's FAST model rejects max_tokens, and takes a temperature only at effort "none".
"""

from __future__ import annotations

from labkit.course.ex02 import (
    HEADLINE_MESSAGES,
    LESSON_ANALYSIS,
    LESSON_HEADLINES,
    LESSON_SUPPORT,
    SUPPORT_MESSAGES,
    analysis_messages,
    load_financials,
)
from labkit.course.models import FAST

MAX_TOKENS_ERROR = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
TEMPERATURE_ERROR = "Unsupported value: 'temperature' does not support {value} with this model. Only the default (1) value is supported."
TOP_P_ERROR = "Unsupported parameter: 'top_p' is not supported with this model."
EFFORT_ERROR = ("Unsupported parameter: 'temperature' is not supported with reasoning effort '{effort}' on this model. "
                "Set 'reasoning_effort' to 'none' to use sampling parameters.")
NOT_FOUND_ERROR = "The model `{model}` does not exist or you do not have access to it."


def lesson_requests(csv_text: str) -> dict[str, dict]:
    """The three templates exactly as the lesson sets them."""
    return {
        "support": {**LESSON_SUPPORT, "messages": SUPPORT_MESSAGES},
        "headlines": {**LESSON_HEADLINES, "messages": HEADLINE_MESSAGES},
        "analysis": {**LESSON_ANALYSIS, "messages": analysis_messages(csv_text, role="system")},
    }


def with_completion_cap(request: dict) -> dict:
    """The request with max_tokens renamed max_completion_tokens (the first fix the API asks for)."""
    fixed = {k: v for k, v in request.items() if k != "max_tokens"}
    fixed["max_completion_tokens"] = request["max_tokens"]
    return fixed


def _error(status: int, message: str, param: str | None, code: str) -> dict:
    return {"status": status, "message": message, "type": "invalid_request_error", "param": param, "code": code}


def build(a) -> None:
    reqs = lesson_requests(load_financials())
    a.call(lambda c: c.chat.completions.create(**reqs["support"]),
           error=_error(400, MAX_TOKENS_ERROR, "max_tokens", "unsupported_parameter"),
           label="authored 400: the lesson's template 1 as written (max_tokens on a reasoning model)")
    a.call(lambda c: c.chat.completions.create(**reqs["headlines"]),
           error=_error(400, MAX_TOKENS_ERROR, "max_tokens", "unsupported_parameter"),
           label="authored 400: the lesson's template 2 as written (max_tokens on a reasoning model)")
    a.call(lambda c: c.chat.completions.create(**reqs["analysis"]),
           error=_error(404, NOT_FOUND_ERROR.format(model=LESSON_ANALYSIS["model"]), None, "model_not_found"),
           label="authored 404: the lesson's template 3 as written (o1 was shut down on 2026-10-23)")

    # fix the output cap and the API reports the next problem: the sampling parameter
    support, headlines = with_completion_cap(reqs["support"]), with_completion_cap(reqs["headlines"])
    a.call(lambda c: c.chat.completions.create(**support),
           error=_error(400, TEMPERATURE_ERROR.format(value=LESSON_SUPPORT["temperature"]), "temperature", "unsupported_value"),
           label="authored 400: template 1 with max_completion_tokens (temperature on a reasoning model)")
    a.call(lambda c: c.chat.completions.create(**headlines),
           error=_error(400, TOP_P_ERROR, "top_p", "unsupported_parameter"),
           label="authored 400: template 2 with max_completion_tokens (top_p on a reasoning model)")

    # swap only the model for a current one: the same two problems, on today's terms
    swapped = {**reqs["support"], "model": FAST}
    a.call(lambda c: c.chat.completions.create(**swapped),
           error=_error(400, MAX_TOKENS_ERROR, "max_tokens", "unsupported_parameter"),
           label="authored 400: template 1 with only the model swapped for the FAST role (max_tokens)")
    swapped_cap = with_completion_cap(swapped)
    a.call(lambda c: c.chat.completions.create(**swapped_cap),
           error=_error(400, EFFORT_ERROR.format(effort="medium"), "temperature", "unsupported_parameter"),
           label="authored 400: the FAST role at its default effort (medium) with a temperature")
