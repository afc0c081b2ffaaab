"""labkit.lint: each code fires on a wrong request and is silent on the corrected one."""

from __future__ import annotations

from typing import Any

import pytest

from labkit import catalog
from labkit.lint import Finding, format_findings, lint_request

HI = [{"role": "user", "content": "hi"}]



def codes(**params: Any) -> set[str]:
    return {f.code for f in lint_request(**params)}


def test_contract_example() -> None:
    wrong = codes(model="gpt-5-mini", temperature=0.2, max_tokens=300, messages=HI)
    assert {"temperature-unsupported", "max-tokens-unsupported"} <= wrong
    assert codes(model="gpt-4.1-mini", temperature=0.2, max_tokens=300, messages=HI) == set()


BIG = "word " * 130_000  # ~130K tokens, over gpt-4o's 128K window

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (code, wrong request, corrected request)
    ("missing-model", {"messages": HI}, {"model": "gpt-4.1-mini", "messages": HI}),
    ("unknown-model", {"model": "gpt5-mini", "messages": HI}, {"model": "gpt-5-mini", "messages": HI}),
    ("retired-model", {"model": "gpt-3.5-turbo", "messages": HI},
     {"model": "gpt-4.1-mini", "messages": HI}),
    ("retired-model", {"model": "text-davinci-003", "messages": HI},
     {"model": "gpt-4.1-mini", "messages": HI}),
    ("temperature-unsupported", {"model": "o1", "temperature": 0.0, "messages": HI},
     {"model": "o1", "reasoning_effort": "high", "messages": HI}),
    ("temperature-unsupported", {"model": "gpt-5", "temperature": 1.2, "messages": HI},
     {"model": "gpt-5", "temperature": 1, "messages": HI}),
    ("top-p-unsupported", {"model": "gpt-5", "top_p": 0.9, "messages": HI},
     {"model": "gpt-5", "verbosity": "low", "messages": HI}),
    ("penalties-unsupported", {"model": "o3", "frequency_penalty": 0.5, "messages": HI},
     {"model": "gpt-4.1", "frequency_penalty": 0.5, "messages": HI}),
    ("penalties-unsupported", {"model": "gpt-5-nano", "presence_penalty": 1.0, "input": "hi"},
     {"model": "gpt-5-nano", "input": "hi"}),
    ("max-tokens-unsupported", {"model": "o1", "max_tokens": 1500, "messages": HI},
     {"model": "o1", "max_completion_tokens": 1500, "messages": HI}),
    ("reasoning-unsupported", {"model": "gpt-4.1-mini", "reasoning_effort": "low", "messages": HI},
     {"model": "gpt-5-mini", "reasoning_effort": "low", "messages": HI}),
    ("reasoning-unsupported", {"model": "gpt-4o", "reasoning": {"effort": "low"}, "input": "hi"},
     {"model": "o4-mini", "reasoning": {"effort": "low"}, "input": "hi"}),
    ("reasoning-unsupported", {"model": "o3", "reasoning_effort": "minimal", "messages": HI},
     {"model": "gpt-5", "reasoning_effort": "minimal", "messages": HI}),
    ("reasoning-unsupported", {"model": "o3", "text": {"verbosity": "low"}, "input": "hi"},
     {"model": "gpt-5", "text": {"verbosity": "low"}, "input": "hi"}),
    ("deprecated-functions",
     {"model": "gpt-4.1-mini", "messages": HI, "functions": [{"name": "f"}], "function_call": "auto"},
     {"model": "gpt-4.1-mini", "messages": HI,
      "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto"}),
    ("context-overflow", {"model": "gpt-4o", "messages": [{"role": "user", "content": BIG}]},
     {"model": "gpt-4.1", "messages": [{"role": "user", "content": BIG}]}),
    ("context-overflow", {"model": "gpt-5-mini", "input": "hi", "max_output_tokens": 400_000},
     {"model": "gpt-5-mini", "input": "hi", "max_output_tokens": 100_000}),
    ("max-output-exceeded", {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 20_000},
     {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 16_000}),
    ("temperature-and-top-p", {"model": "gpt-4.1-mini", "temperature": 0.2, "top_p": 0.9, "messages": HI},
     {"model": "gpt-4.1-mini", "temperature": 0.2, "messages": HI}),
]


@pytest.mark.parametrize(("code", "wrong", "right"), CASES, ids=[c[0] for c in CASES])
def test_code_fires_and_clears(code: str, wrong: dict[str, Any], right: dict[str, Any]) -> None:
    found = lint_request(**wrong)
    assert code in {f.code for f in found}, format_findings(found)
    assert all(f.message.strip() for f in found)
    assert lint_request(**right) == [], format_findings(lint_request(**right))


def test_default_temperature_accepted_on_reasoning_model() -> None:
    assert codes(model="gpt-5-mini", temperature=1, top_p=1, messages=HI) == set()
    assert codes(model="o3", temperature=1.0, frequency_penalty=0, messages=HI) == set()


def test_snapshot_ids_are_linted_like_their_base() -> None:
    assert "max-tokens-unsupported" in codes(model="gpt-5-mini-2025-08-07", max_tokens=10, messages=HI)


def test_unknown_model_suggests_close_ids() -> None:
    [finding] = lint_request(model="gpt-4.1-minii", messages=HI)
    assert finding.severity == "error" and "gpt-4.1-mini" in finding.message


def test_lesson_exercise_one_templates() -> None:
    # The lesson's three templates, as written, against the real API rules.
    t1 = codes(model="gpt-5-mini", temperature=0.2, max_tokens=300, messages=HI)
    t2 = codes(model="gpt-5", temperature=1.0, top_p=0.9, max_tokens=100, messages=HI)
    t3 = codes(model="o1", temperature=0.0, max_tokens=1500, messages=HI)
    assert t1 == {"temperature-unsupported", "max-tokens-unsupported"}
    assert t2 == {"top-p-unsupported", "max-tokens-unsupported"}
    assert t3 == {"temperature-unsupported", "max-tokens-unsupported"}


def test_severity_and_messages() -> None:
    found = lint_request(model="gpt-5-mini", temperature=0.2, max_tokens=300, messages=HI,
                         functions=[{"name": "f"}])
    assert [f.severity for f in found] == sorted(
        (f.severity for f in found), key=["error", "warning", "info"].index)
    by_code = {f.code: f for f in found}
    assert "max_completion_tokens" in by_code["max-tokens-unsupported"].message
    assert "reasoning_effort" in by_code["temperature-unsupported"].message
    assert "tools" in by_code["deprecated-functions"].message
    assert by_code["deprecated-functions"].severity == "warning"


def test_format_findings() -> None:
    assert format_findings([]) == "ok: no problems found"
    text = format_findings(
        [Finding("temperature-and-top-p", "warning", "w"), Finding("missing-model", "error", "e")]
    )
    lines = text.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error") and "missing-model" in lines[0]
