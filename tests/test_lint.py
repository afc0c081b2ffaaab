"""labkit.lint: each code fires on a wrong request and is silent on the corrected one.

Lifecycles are judged on a pinned day, so these tests pass whatever the real date is.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from labkit.lint import Finding, format_findings, lint_request, sdk_model_ids

HI = [{"role": "user", "content": "hi"}]
DAY = datetime.date(2026, 12, 1)
LATER = datetime.date(2027, 7, 15)
TOOL = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


def codes(today: datetime.date = DAY, **params: Any) -> set[str]:
    return {f.code for f in lint_request(today=today, **params)}


def test_done_when_of_the_issue() -> None:
    o1 = lint_request(today=DAY, model="o1", messages=HI)
    assert [(f.code, f.severity) for f in o1] == [("model-shut-down", "error")]
    assert "gpt-6.1-sol" in o1[0].message
    mini = lint_request(today=DAY, model="gpt-4o-mini", messages=HI)
    assert [(f.code, f.severity) for f in mini] == [("model-deprecated", "warning")]
    assert "2027-01-14" in mini[0].message and "gpt-6-luna" in mini[0].message
    for model in ("gpt-6.1-terra", "gpt-6-luna", "gpt-6.1-sol", "gpt-6.2-sol"):
        assert codes(model=model, messages=HI) == set(), model
    assert codes(model="gpt-6.1-terra", temperature=0.2, reasoning_effort="none", messages=HI) == set()
    assert "sampling-unsupported" in codes(model="gpt-6.1-sol", temperature=0.2, messages=HI)
    assert "max-tokens-unsupported" in codes(model="gpt-6.1-terra", max_tokens=300, messages=HI)


def test_lifecycle_follows_the_date() -> None:
    # gpt-5 is deprecated on 1 December and shut down after 11 December 2026
    assert codes(model="gpt-5", messages=HI) == {"model-deprecated"}
    assert codes(today=datetime.date(2026, 12, 11), model="gpt-5", messages=HI) == {"model-shut-down"}
    assert codes(today=LATER, model="gpt-4.1-mini", messages=HI) == {"model-shut-down"}


BIG = "word " * 130_000  # ~130K tokens, over gpt-4o's 128K window

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (code, wrong request, corrected request)
    ("missing-model", {"messages": HI}, {"model": "gpt-6-luna", "messages": HI}),
    ("unknown-model", {"model": "gpt6-luna", "messages": HI}, {"model": "gpt-6-luna", "messages": HI}),
    ("model-shut-down", {"model": "gpt-3.5-turbo", "messages": HI}, {"model": "gpt-6-luna", "messages": HI}),
    ("model-deprecated", {"model": "o3", "messages": HI}, {"model": "gpt-6.1-sol", "messages": HI}),
    ("sampling-unsupported", {"model": "gpt-6.1-sol", "temperature": 0.0, "messages": HI},
     {"model": "gpt-6.1-sol", "reasoning_effort": "high", "messages": HI}),
    ("sampling-unsupported", {"model": "gpt-6-luna", "top_p": 0.9, "messages": HI},
     {"model": "gpt-6-luna", "top_p": 0.9, "reasoning_effort": "none", "messages": HI}),
    ("sampling-unsupported", {"model": "gpt-6.1-terra", "logprobs": True, "messages": HI},
     {"model": "gpt-6.1-terra", "logprobs": True, "reasoning_effort": "none", "messages": HI}),
    ("sampling-unsupported", {"model": "gpt-6.2-sol", "frequency_penalty": 0.5, "input": "hi"},
     {"model": "gpt-6.2-sol", "input": "hi"}),
    ("sampling-unsupported", {"model": "gpt-6.1-terra", "temperature": 0.2, "reasoning": {"effort": "low"}, "input": "hi"},
     {"model": "gpt-6.1-terra", "temperature": 0.2, "reasoning": {"effort": "none"}, "input": "hi"}),
    ("sampling-out-of-range", {"model": "gpt-4.1", "temperature": 2.5, "messages": HI},
     {"model": "gpt-4.1", "temperature": 2.0, "messages": HI}),
    ("sampling-out-of-range", {"model": "gpt-4.1", "top_p": 1.5, "messages": HI},
     {"model": "gpt-4.1", "top_p": 1, "messages": HI}),
    ("max-tokens-unsupported", {"model": "gpt-6.2-sol", "max_tokens": 1500, "messages": HI},
     {"model": "gpt-6.2-sol", "max_completion_tokens": 1500, "messages": HI}),
    ("max-tokens-deprecated", {"model": "gpt-4.1", "max_tokens": 300, "messages": HI},
     {"model": "gpt-4.1", "max_completion_tokens": 300, "messages": HI}),
    ("reasoning-unsupported", {"model": "gpt-4.1", "reasoning_effort": "low", "messages": HI},
     {"model": "gpt-6.1-terra", "reasoning_effort": "low", "messages": HI}),
    ("reasoning-unsupported", {"model": "gpt-6.1-sol", "reasoning": {"effort": "none"}, "input": "hi"},
     {"model": "gpt-6.1-terra", "reasoning": {"effort": "none"}, "input": "hi"}),
    ("reasoning-unsupported", {"model": "gpt-6.2-sol", "reasoning_effort": "minimal", "messages": HI},
     {"model": "gpt-6.2-sol", "reasoning_effort": "low", "messages": HI}),
    ("verbosity-unsupported", {"model": "gpt-4.1", "text": {"verbosity": "low"}, "input": "hi"},
     {"model": "gpt-6.2-sol", "text": {"verbosity": "low"}, "input": "hi"}),
    ("chat-tools-unsupported", {"model": "gpt-6.1-terra", "messages": HI, "tools": TOOL},
     {"model": "gpt-6.1-terra", "input": "hi", "tools": [{"type": "function", "name": "lookup", "parameters": {}}]}),
    ("chat-tools-unsupported", {"model": "gpt-6-luna", "messages": HI, "tools": TOOL},
     {"model": "gpt-6-luna", "messages": HI, "tools": TOOL, "reasoning_effort": "none"}),
    ("deprecated-functions",
     {"model": "gpt-6-luna", "input": "hi", "functions": [{"name": "f"}], "function_call": "auto"},
     {"model": "gpt-6-luna", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {}}]}),
    ("json-mode-needs-json", {"model": "gpt-6-luna", "messages": HI, "response_format": {"type": "json_object"}},
     {"model": "gpt-6-luna", "messages": [{"role": "user", "content": "Answer in JSON: hi"}],
      "response_format": {"type": "json_object"}}),
    ("stream-options-need-stream", {"model": "gpt-6-luna", "messages": HI, "stream_options": {"include_usage": True}},
     {"model": "gpt-6-luna", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}),
    ("context-overflow", {"model": "gpt-4o", "messages": [{"role": "user", "content": BIG}]},
     {"model": "gpt-4.1", "messages": [{"role": "user", "content": BIG}]}),
    ("max-output-exceeded", {"model": "gpt-4o", "max_completion_tokens": 20_000, "messages": HI},
     {"model": "gpt-4o", "max_completion_tokens": 16_000, "messages": HI}),
    ("long-context-price", {"model": "gpt-6.1-terra", "input": "word " * 280_000},
     {"model": "gpt-6.1-terra", "input": "word " * 200_000}),
    ("temperature-and-top-p", {"model": "gpt-4.1", "temperature": 0.5, "top_p": 0.9, "messages": HI},
     {"model": "gpt-4.1", "temperature": 0.5, "messages": HI}),
]


@pytest.mark.parametrize(("code", "wrong", "fixed"), CASES, ids=[c[0] for c in CASES])
def test_code_fires_and_clears(code: str, wrong: dict[str, Any], fixed: dict[str, Any]) -> None:
    assert code in codes(**wrong)
    assert code not in codes(**fixed)


def test_unknown_model_consults_the_sdk() -> None:
    known_to_sdk = next(m for m in sorted(sdk_model_ids()) if m.startswith("gpt-4o-audio"))
    finding = next(f for f in lint_request(today=DAY, model=known_to_sdk, messages=HI) if f.code == "unknown-model")
    assert finding.severity == "warning" and "SDK knows it" in finding.message
    typo = next(f for f in lint_request(today=DAY, model="gpt-6.1-tera", messages=HI) if f.code == "unknown-model")
    assert "gpt-6.1-terra" in typo.message and "spelling" in typo.message


def test_lesson_exercise_one_templates_as_written() -> None:
    """The lesson's three templates: what the API now says to each."""
    t1 = codes(model="gpt-5-mini", temperature=0.2, max_tokens=300, messages=HI)
    assert {"sampling-unsupported", "max-tokens-unsupported", "model-deprecated"} <= t1
    t2 = codes(model="gpt-5", temperature=1.0, top_p=0.9, max_tokens=100, messages=HI)
    assert {"sampling-unsupported", "max-tokens-unsupported"} <= t2
    assert codes(model="o1", temperature=0.0, max_tokens=1500, messages=HI) >= {"model-shut-down"}


def test_severity_order_and_format() -> None:
    found = lint_request(today=DAY, model="gpt-5-mini", temperature=0.2, max_tokens=300, messages=HI)
    assert [f.severity for f in found] == sorted((f.severity for f in found), key=["error", "warning", "info"].index)
    assert all(isinstance(f, Finding) and f.message.endswith((".", ")")) for f in found)
    text = format_findings(found)
    assert text.count("\n") == len(found) - 1 and "sampling-unsupported" in text
    assert format_findings([]) == "ok: no problems found"
