"""Notebook 02: the lesson's three requests as written, answered with the API's real 400 errors (authored recordings of the documented error format)."""

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

TEMPERATURE_ERROR = "Unsupported value: 'temperature' does not support {value} with this model. Only the default (1) value is supported."
MAX_TOKENS_ERROR = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."


def lesson_requests(csv_text: str) -> dict[str, dict]:
    """The three templates exactly as the lesson sets them (each is rejected by the real API)."""
    return {
        "support": {**LESSON_SUPPORT, "messages": SUPPORT_MESSAGES},
        "headlines": {**LESSON_HEADLINES, "messages": HEADLINE_MESSAGES},
        "analysis": {**LESSON_ANALYSIS, "messages": analysis_messages(csv_text, role="system")},
    }


def _max_tokens() -> dict:
    return {"status": 400, "message": MAX_TOKENS_ERROR, "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}


def _temperature(value: str) -> dict:
    return {"status": 400, "message": TEMPERATURE_ERROR.format(value=value), "type": "invalid_request_error",
            "param": "temperature", "code": "unsupported_value"}


def build(a) -> None:
    reqs = lesson_requests(load_financials())
    for name, req in reqs.items():
        a.call(lambda c, req=req: c.chat.completions.create(**req), error=_max_tokens(),
               label=f"authored 400: the lesson's {name} request as written (max_tokens on a reasoning model)")
    # fix the output limit and the API reports the next problem: the temperature
    for name, value in (("support", "0.2"), ("analysis", "0")):
        req = dict(reqs[name])
        req["max_completion_tokens"] = req.pop("max_tokens")
        a.call(lambda c, req=req: c.chat.completions.create(**req), error=_temperature(value),
               label=f"authored 400: the lesson's {name} request with max_completion_tokens (temperature on a reasoning model)")
