"""Exercise 07: the reference solution replays exactly, its SQL is sound, and the checks pass on a
separately started Redis (REDIS_URL)."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import ex07 as source  # the recorded answers
import pytest
import redis

import labkit
from labkit import catalog, faults, redisd
from labkit.checks import get_exercise, load_learner_module, run_checks
from labkit.course import ex07 as course
from labkit.paths import exercises_dir

ROOT = Path(__file__).resolve().parent.parent
sol = load_learner_module(ROOT / "solutions" / "ex07_saas_patterns.py")
starter = load_learner_module(exercises_dir() / "ex07_saas_patterns.py")


def test_the_starter_is_given_the_course_data() -> None:
    for name in ("TIER_LIMITS", "STAGES", "STAGE_MODELS", "SEOFields", "stage_messages"):
        assert getattr(starter, name) is getattr(course, name) is getattr(sol, name), name
    assert starter.SCHEMA == sol.SCHEMA


def test_every_tier_model_takes_its_reasoning_effort() -> None:
    for tier, limits in course.TIER_LIMITS.items():
        info = catalog.get_model(limits["model"])
        assert info.reasoning and limits["reasoning_effort"] in info.reasoning_efforts, tier
        assert limits["max_completion_tokens"] <= info.max_output, tier


def test_pipeline_requests_are_exact_recordings() -> None:
    client = labkit.client("ex07")
    post = sol.ContentPipeline(client).generate_blog_post(course.TOPIC)
    served = labkit.transport_of(client).served
    assert [s.tier for s in served] == ["exact"] * 4
    assert post["seo_title"] == source.SEO["title"] and len(post["seo_title"]) <= 60
    assert len(post["meta_description"]) <= 160


def test_every_tier_request_is_accepted_by_the_linter() -> None:
    c = faults.client((), "ex07")
    r = redisd.connect()
    prefix = redisd.fresh_prefix("test07")
    try:
        gate = sol.FeatureGate(c, r, prefix=prefix)
        for tier in sol.TIER_LIMITS:
            gate.process_with_tier_limits(f"u-{tier}", tier, course.STATUS)
    finally:
        redisd.drop_prefix(r, prefix)
    for attempt in c._labkit_transport.attempts:
        assert not [f for f in labkit.lint_request(**attempt.body) if f.severity == "error"]


def test_billing_sql(tmp_path: Path) -> None:
    billing = sol.TenantBilling(labkit.client("ex07"), str(tmp_path / "b.sqlite3"))
    billing.setup()
    billing.setup()  # idempotent
    billing.add_tenant("t", "free", 1)
    with pytest.raises(sqlite3.IntegrityError):
        billing.add_tenant("t", "free", 1)
    billing.process_request("t", course.MARKETING)
    with pytest.raises(sol.OutOfCredits):
        billing.process_request("t", course.MARKETING)
    with pytest.raises(KeyError):
        billing.remaining_credits("nobody")
    with pytest.raises(sqlite3.IntegrityError):  # foreign key: usage for an unknown tenant
        billing.record_billable_usage("nobody", "f", "m", 1, 1, 1, 0.0)
    assert sol._next_month("2026-12") == "2027-01" and sol._next_month("2026-01") == "2026-02"


def test_checks_pass_on_a_separately_started_server(monkeypatch: pytest.MonkeyPatch) -> None:
    server = redisd.start_server()
    try:
        monkeypatch.setenv("REDIS_URL", server.url)
        direct = redis.Redis(unix_socket_path=str(server.socket))
        report = run_checks("ex07", ROOT / "solutions")
        assert not [(x.id, x.detail) for x in report.results if x.status != "pass"]
        assert direct.info("stats")["total_commands_processed"] > 20 and direct.dbsize() == 0
    finally:
        server.stop()


def test_toml_and_mutants_cover_each_check() -> None:
    ids = {c.id.split(".", 1)[1] for c in get_exercise("ex07").checks}
    assert {m["check"] for m in tomllib.loads((ROOT / "tests" / "mutants" / "ex07.toml").read_text())["mutant"]} == ids
