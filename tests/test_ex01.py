"""Exercise 01: the contract, the recordings, the check helpers, realistic wrong submissions, the live-cost helper."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from labkit.catalog import get_model
from labkit.checks import ex01 as g
from labkit.checks import get_exercise, run_checks
from labkit.clock import course_date
from labkit.course import ex01 as course
from labkit.course import models
from labkit.lint import lint_request
from labkit.notebook import course_live_cost, notebook_cassettes
from labkit.replay import load_cassette, resolve_cassette

ROOT = Path(__file__).resolve().parent.parent
WRONG = tomllib.loads((ROOT / "tests" / "mutants" / "ex01.toml").read_text())["wrong"]

# --------------------------------------------------------------------------- the contract


def test_the_course_request_is_clean_in_both_apis_and_the_effort_is_accepted() -> None:
    info = get_model(course.MODEL)
    assert course.EFFORT in info.efforts and set(course.CHEAP_EFFORTS) <= set(info.efforts)
    assert course.EFFORT != info.default_effort  # chosen on purpose, not the default
    day = course_date()
    chat = lint_request(today=day, model=course.MODEL, messages=course.MESSAGES, reasoning_effort=course.EFFORT)
    responses = lint_request(today=day, model=course.MODEL, instructions=course.SYSTEM, input=course.PROMPT,
                             reasoning={"effort": course.EFFORT})
    assert not [f for f in chat + responses if f.severity == "error"], chat + responses
    assert course.MODEL in models.ROLES.values()


def test_summary_contract_names_every_key_and_both_apis() -> None:
    assert list(course.SUMMARY) == ["id", "text", "model", "finish_reason", "input_tokens", "output_tokens",
                                    "reasoning_tokens", "cost_usd"]
    assert all(len(where) == 3 for where in course.SUMMARY.values())
    assert set(course.INCOMPLETE_REASONS.values()) <= set(course.FINISH_REASONS)


# --------------------------------------------------------------------------- the recordings


def _bodies(name: str) -> list[tuple[dict[str, Any], int, dict[str, Any]]]:
    cassette = load_cassette(resolve_cassette(name))
    return [(i.body or {}, i.status, json.loads(i.content)) for i in cassette.interactions]


def test_notebook_cassette_holds_the_chosen_effort_the_default_the_responses_call_and_the_lesson_404() -> None:
    (chosen, s1, r1), (resp, s3, r3), (default, s2, r2), (lesson, s4, r4) = _bodies("ex01")
    assert chosen["reasoning_effort"] == course.EFFORT and s1 == 200
    assert r1["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert "reasoning_effort" not in default and s2 == 200
    assert r2["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0  # the default effort bills reasoning
    assert resp["reasoning"] == {"effort": course.EFFORT} and r3["object"] == "response" and r3["reasoning"]["effort"] == course.EFFORT
    assert lesson["model"] == models.LESSON_FLAGSHIP and s4 == 404 and r4["error"]["code"] == "model_not_found"


def test_variant_answers_both_apis_with_another_text() -> None:
    answers = [b for _, _, b in _bodies("ex01_variant")]
    assert [a["object"] for a in answers] == ["chat.completion", "response"]
    assert answers[0]["choices"][0]["message"]["content"] != g.ANSWER


# --------------------------------------------------------------------------- the check helpers


@pytest.mark.parametrize("shape", g.SHAPES, ids=[s.name for s in g.SHAPES])
def test_the_oracle_agrees_with_the_sdk_on_every_shape(shape: g.Shape) -> None:
    chat = ChatCompletion.model_validate(g.chat_wire(shape))
    want = g.expected("chat", g.chat_wire(shape))
    assert want["text"] == chat.choices[0].message.content and want["finish_reason"] == chat.choices[0].finish_reason
    if shape.only != "chat":
        response = Response.model_validate(g.responses_wire(shape))
        want = g.expected("responses", g.responses_wire(shape))
        assert want["text"] == response.output_text
        assert want["output_tokens"] == response.usage.output_tokens  # type: ignore[union-attr]


def test_turns_and_conversation_problems() -> None:
    ok = g.turns({"instructions": course.SYSTEM, "input": course.PROMPT})
    assert g.conversation_problem(ok, course.PROMPT) is None
    parts = [{"role": "developer", "content": [{"type": "input_text", "text": course.SYSTEM}]},
             {"role": "user", "content": course.PROMPT}]
    assert g.conversation_problem(g.turns({"input": parts}), course.PROMPT) is None
    twice = g.turns({"instructions": course.SYSTEM, "input": course.MESSAGES})
    assert "twice" in (g.conversation_problem(twice, course.PROMPT) or "")
    user_only = g.turns([{"role": "user", "content": course.PROMPT}])
    assert "starts with a 'user' message" in (g.conversation_problem(user_only, course.PROMPT) or "")


# --------------------------------------------------------------------------- realistic wrong submissions


def _materialize(entry: dict[str, Any], tmp_path: Path) -> Path:
    base = ROOT / entry.get("base", "solutions/ex01_first_call.py")
    source = base.read_text()
    for find, replace in entry["replace"]:
        assert find in source, f"wrong submission {entry['why']!r}: {find!r} no longer occurs in {base.name}"
        source = source.replace(find, replace, 1)
    out = tmp_path / f"{get_exercise('ex01').file}.py"
    out.write_text(source)
    return out


@pytest.mark.parametrize("entry", WRONG, ids=[w["why"][:50] for w in WRONG])
def test_each_wrong_submission_is_caught_by_its_check_for_its_reason(entry: dict[str, Any], tmp_path: Path) -> None:
    report = run_checks("ex01", _materialize(entry, tmp_path))
    result = next(r for r in report.results if r.id == f"ex01.{entry['check']}")
    assert result.status == "fail", (entry["why"], result.detail)
    assert entry["detail"] in result.detail, (entry["why"], result.detail)


# --------------------------------------------------------------------------- notebook 00's live-cost total


def test_live_cost_counts_only_the_notebooks_own_cassettes() -> None:
    owned = notebook_cassettes()
    assert owned["01_first_api_call"] == ("ex01",)
    every = {name for names in owned.values() for name in names}
    assert not every & {"selftest", "ex01_variant"}
    rows = course_live_cost()
    assert [r[0] for r in rows] == [name for name, names in owned.items() if names]
    assert all(n > 0 and usd >= 0 for _, n, usd in rows)


def test_live_cost_reads_notebook_files_when_there_are_no_sources(tmp_path: Path) -> None:
    cell = {"cell_type": "code", "source": ['import labkit\n', 'labkit.notebook.intro("ex01")\n']}
    (tmp_path / "01_x.ipynb").write_text(json.dumps({"cells": [cell]}))
    assert notebook_cassettes(tmp_path) == {"01_x": ("ex01",)}
