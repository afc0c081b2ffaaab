"""Exercise 04 beyond the checks: the shipped usage log and the story it tells, the cache rules and
the shared-prefix metric, reset durations, the cascade's recordings, key diagnosis."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from labkit import lint_request
from labkit.checks import load_learner_module
from labkit.checks.ex04 import KEY_CASES, go_duration
from labkit.costs import cost
from labkit.course.ex03 import PLAYBOOK_CACHED_TOKENS, PLAYBOOK_TOKENS, SUPPORT_PLAYBOOK, support_messages
from labkit.course.ex04 import (
    CASCADE_PARAMS,
    FALLBACK_MODELS,
    FAQ_ASKED,
    FAQ_MODEL,
    FAQ_V1_SHARED,
    OVERLOAD_MESSAGES,
    RATE_HEADERS,
    USAGE_LOG,
    cacheable,
    faq_messages_v1,
    faq_with_cache,
    make_usage_log,
    shared_prefix_tokens,
    shared_text,
)
from labkit.paths import data_dir, solutions_dir
from labkit.replay import load_cassette, resolve_cassette
from labkit.tokens import count_tokens


@pytest.fixture(scope="module")
def ref():
    return load_learner_module(solutions_dir() / "ex04_troubleshooting.py")


def test_shipped_usage_log_is_what_the_generator_makes() -> None:
    shipped = [json.loads(line) for line in (data_dir() / USAGE_LOG).read_text(encoding="utf-8").splitlines()]
    assert shipped == make_usage_log(), "rebuild it: python -c 'from labkit.course.ex04 import write_usage_log; write_usage_log()'"


def _price(rows):
    return sum(cost(r["usage"], r["model"]).total_usd for r in rows)


def test_usage_log_tells_the_story_the_notebook_tells() -> None:
    rows = make_usage_log()
    by_feature: dict[str, float] = {}
    for r in rows:
        by_feature[r["feature"]] = by_feature.get(r["feature"], 0.0) + cost(r["usage"], r["model"]).total_usd
    assert max(by_feature, key=by_feature.get) == "faq-bot"
    dearest = max(rows, key=lambda r: cost(r["usage"], r["model"]).total_usd)
    biggest = max(rows, key=lambda r: r["usage"]["total_tokens"])
    assert (dearest["feature"], biggest["feature"]) == ("weekly-report", "doc-summarizer")
    faq = [r for r in rows if r["feature"] == "faq-bot"]
    assert all(r["prompt_prefix"].startswith("Current time:") for r in faq)
    hits = [r for r in faq if r["usage"]["prompt_tokens_details"]["cached_tokens"]]
    writes = [r for r in faq if r["usage"]["prompt_tokens_details"]["cache_write_tokens"]]
    assert len(hits) + len(writes) == len(faq) and len(hits) < len(faq) / 10  # a read only when two land in the same minute
    # The timestamp-first prompt costs more than no cache at all: it pays for writes it never reads.
    uncached = [{**r, "usage": {**r["usage"], "prompt_tokens_details": {"cached_tokens": 0}}} for r in faq]
    assert _price(faq) > _price(uncached)
    fixed = faq_with_cache(faq, shared_prefix_tokens(support_messages("a"), support_messages("b"), FAQ_MODEL))
    assert _price(fixed) < 0.6 * _price(faq)


def test_cache_rules() -> None:
    assert cacheable(1023) == 0 and cacheable(1024) == 1024 and cacheable(1151) == 1024 and cacheable(1152) == 1152
    assert PLAYBOOK_CACHED_TOKENS == 1024
    assert count_tokens([{"role": "system", "content": SUPPORT_PLAYBOOK}], FAQ_MODEL) == PLAYBOOK_TOKENS >= 1024


def test_the_deployed_prompt_shares_the_counted_prefix_only_within_a_minute() -> None:
    same_minute = (faq_messages_v1("a?", datetime(2026, 10, 5, 7, 0, 2)), faq_messages_v1("b", datetime(2026, 10, 5, 7, 0, 40)))
    assert shared_prefix_tokens(*same_minute) == FAQ_V1_SHARED
    next_minute = (faq_messages_v1("a?", datetime(2026, 10, 5, 7, 0)), faq_messages_v1("a?", datetime(2026, 10, 5, 7, 1)))
    assert shared_prefix_tokens(*next_minute) < 30


@pytest.mark.parametrize("layout", ["playbook first", "developer + system time", "time appended to the playbook"])
def test_valid_layouts_share_the_playbook(layout: str) -> None:
    from labkit.course.ex04 import stamp

    def build(q: str, t: datetime) -> list[dict[str, str]]:
        if layout == "playbook first":
            return [{"role": "system", "content": SUPPORT_PLAYBOOK}, {"role": "user", "content": f"{stamp(t)}\n{q}"}]
        if layout == "developer + system time":
            return [{"role": "developer", "content": SUPPORT_PLAYBOOK}, {"role": "system", "content": stamp(t)},
                    {"role": "user", "content": q}]
        return [{"role": "system", "content": f"{SUPPORT_PLAYBOOK}\nNow: {stamp(t)}"}, {"role": "user", "content": q}]

    (qa, ta), (qb, tb) = FAQ_ASKED[:2]
    a, b = build(qa, ta), build(qb, tb)
    assert shared_prefix_tokens(a, b) >= 1024 and SUPPORT_PLAYBOOK in shared_text(a, b)


@pytest.mark.parametrize(("text", "seconds"), [("20ms", 0.02), ("1.5s", 1.5), ("6m0s", 360.0), ("1m2.4s", 62.4),
                                               ("1h2m3.5s", 3723.5), ("0s", 0.0)])
def test_parse_reset(ref, text: str, seconds: float) -> None:
    assert ref.parse_reset(text) == pytest.approx(seconds)


@pytest.mark.parametrize("seconds", [0.0, 0.25, 1.0, 59.999, 60.0, 62.4, 3600.0, 3723.5, 86_400.0])
def test_go_duration_round_trips_through_the_reference(ref, seconds: float) -> None:
    assert ref.parse_reset(go_duration(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "soon", "5 minutes", "1x", "ms"])
def test_parse_reset_rejects_junk(ref, bad: str) -> None:
    with pytest.raises(ValueError):
        ref.parse_reset(bad)


def test_reference_reads_the_authored_headers(ref) -> None:
    limits = ref.read_rate_limits(RATE_HEADERS)
    assert limits["remaining_tokens"] == 1450 and limits["reset_tokens"] == pytest.approx(62.4)
    assert ref.pause_before(limits, 1000) == 0.0 and ref.pause_before(limits, 5000) == pytest.approx(62.4)


def test_the_cascade_and_its_demonstration_are_honest() -> None:
    for model in FALLBACK_MODELS:
        assert not [f for f in lint_request(model=model, messages=OVERLOAD_MESSAGES) if f.severity == "error"], model
    first, second = FALLBACK_MODELS[:2]
    assert any(f.severity == "error" for f in lint_request(model=first, messages=OVERLOAD_MESSAGES, **CASCADE_PARAMS))
    assert not [f for f in lint_request(model=second, messages=OVERLOAD_MESSAGES, **CASCADE_PARAMS) if f.severity == "error"]


def test_the_course_requests_lint_clean() -> None:
    for inter in load_cassette(resolve_cassette("ex04")).interactions:
        if inter.status == 200:
            assert not [f for f in lint_request(**dict(inter.body)) if f.severity == "error"], inter.label


def test_key_cases_never_reach_output(ref) -> None:
    for _, key, want in KEY_CASES:
        assert set(ref.diagnose_key(key)) == want
        line = ref.describe_key(key)
        if key and len(key.strip()) > 12:
            assert key.strip()[-8:] not in line and key.strip()[8:16] not in line
