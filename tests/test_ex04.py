"""Exercise 04 beyond the checks: the shipped usage log, reset durations, key diagnosis."""

from __future__ import annotations

import json

import pytest

from labkit.checks import load_learner_module
from labkit.checks.ex04 import KEY_CASES
from labkit.costs import cost
from labkit.course.ex03 import PLAYBOOK_TOKENS, SUPPORT_PLAYBOOK
from labkit.course.ex04 import FAQ_MODEL, RATE_HEADERS, USAGE_LOG, make_usage_log
from labkit.paths import data_dir, solutions_dir
from labkit.tokens import count_tokens


@pytest.fixture(scope="module")
def ref():
    return load_learner_module(solutions_dir() / "ex04_troubleshooting.py")


def test_shipped_usage_log_is_what_the_generator_makes() -> None:
    shipped = [json.loads(line) for line in (data_dir() / USAGE_LOG).read_text(encoding="utf-8").splitlines()]
    assert shipped == make_usage_log(), "rebuild it: python -c 'from labkit.course.ex04 import write_usage_log; write_usage_log()'"


def test_usage_log_tells_the_story_the_notebook_tells() -> None:
    rows = make_usage_log()
    by_feature: dict[str, float] = {}
    for r in rows:
        by_feature[r["feature"]] = by_feature.get(r["feature"], 0.0) + cost(r["usage"], r["model"]).total_usd
    assert max(by_feature, key=by_feature.get) == "faq-bot"
    dearest = max(rows, key=lambda r: cost(r["usage"], r["model"]).total_usd)
    biggest = max(rows, key=lambda r: r["usage"]["total_tokens"])
    assert (dearest["feature"], biggest["feature"]) == ("weekly-report", "doc-summarizer")
    assert all(r["usage"]["prompt_tokens_details"]["cached_tokens"] == 0 for r in rows if r["feature"] == "faq-bot")
    assert all(r["prompt_prefix"].startswith("Current time:") for r in rows if r["feature"] == "faq-bot")


@pytest.mark.parametrize(("text", "seconds"), [("20ms", 0.02), ("1.5s", 1.5), ("6m0s", 360.0), ("1m2.4s", 62.4),
                                               ("1h2m3.5s", 3723.5), ("0s", 0.0)])
def test_parse_reset(ref, text: str, seconds: float) -> None:
    assert ref.parse_reset(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "soon", "5 minutes", "1x"])
def test_parse_reset_rejects_junk(ref, bad: str) -> None:
    with pytest.raises(ValueError):
        ref.parse_reset(bad)


def test_reference_reads_the_authored_headers(ref) -> None:
    limits = ref.read_rate_limits(RATE_HEADERS)
    assert limits["remaining_tokens"] == 1450 and limits["reset_tokens"] == pytest.approx(62.4)
    assert ref.pause_before(limits, 1000) == 0.0 and ref.pause_before(limits, 5000) == pytest.approx(62.4)


def test_key_cases_never_reach_output(ref) -> None:
    for _, key, want in KEY_CASES:
        assert set(ref.diagnose_key(key)) == want
        line = ref.describe_key(key)
        if key and len(key.strip()) > 12:
            assert key.strip()[-8:] not in line and key.strip()[8:16] not in line


def test_playbook_token_count_is_current() -> None:
    assert count_tokens([{"role": "system", "content": SUPPORT_PLAYBOOK}], FAQ_MODEL) == PLAYBOOK_TOKENS >= 1024
