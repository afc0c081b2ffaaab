"""Exercise 07: the reference solution replays exactly, its SQL is sound, the checks catch issue 11's
classes of mistakes, and they pass on a separately started Redis (REDIS_URL)."""

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
from labkit.replay import load_cassette, resolve_cassette

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ex07_saas_patterns.py"
sol = load_learner_module(SOLUTION)
starter = load_learner_module(exercises_dir() / "ex07_saas_patterns.py")


def test_the_starter_is_given_the_course_data() -> None:
    for name in ("TIER_LIMITS", "STAGES", "STAGE_MODELS", "SEOFields", "stage_messages"):
        assert getattr(starter, name) is getattr(course, name) is getattr(sol, name), name
    assert starter.SCHEMA == sol.SCHEMA


def test_every_tier_model_takes_its_reasoning_effort() -> None:
    for tier, limits in course.TIER_LIMITS.items():
        info = catalog.get_model(limits["model"])
        assert info.status == "active" and limits["reasoning_effort"] in info.efforts, tier
        assert limits["max_completion_tokens"] <= info.max_output, tier
    assert course.TIER_LIMITS["pro"]["model"] == course.PREMIUM and course.TIER_LIMITS["free"]["model"] == course.CHEAP
    assert course.STAGE_MODELS["write"] == course.PREMIUM


def test_every_recorded_request_is_valid_except_the_lessons_own() -> None:
    for inter in load_cassette(resolve_cassette("ex07")).interactions:
        errors = [f.code for f in labkit.lint_request(**inter.body) if f.severity == "error"]
        if "lesson's" in inter.label:
            assert inter.status == 400 and errors == ["max-tokens-unsupported"]
        else:
            assert inter.status == 200 and not errors, (inter.label, errors)


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


#: Wrong submissions beyond tests/mutants/ex07.toml (one mistake each, issue 11's classes): the check that must fail.
WRONG: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("credits given back only after an HTTP error, not after a timeout", "credits-exhausted", [
        ("        try:\n            response = self.client.chat.completions.create(model=self.model, messages=list(messages))\n        except BaseException:\n",
         "        try:\n            response = self.client.chat.completions.create(model=self.model, messages=list(messages))\n        except openai.APIStatusError:\n"),
        ("import redis\n", "import openai\nimport redis\n"),
    ]),
    ("the tenant matched with LIKE", "tenant-ids", [
        ("\"FROM usage_records WHERE tenant_id = ? AND created_at", "\"FROM usage_records WHERE tenant_id LIKE ? AND created_at"),
    ]),
    ("the month's end as its last day at midnight", "invoice", [
        ("                (tenant_id, f\"{month}-01\", _next_month(month) + \"-01\"),\n",
         "                (tenant_id, f\"{month}-01\", f\"{month}-30\"),\n"),
    ]),
    ("a failed call uses up the daily allowance", "tier-limits", [
        ("            self.redis.decr(key)  # a failed call does not use up the allowance\n", "            pass\n"),
    ]),
    ("the day read from the wall clock, not self.clock", "tier-limits", [
        ("        now = self.clock()\n        day = ", "        now = time.time()\n        day = "),
    ]),
    ("an unknown tier gets the pro tier", "tier-params", [
        ("        limits = TIER_LIMITS.get(user_tier, TIER_LIMITS[DEFAULT_TIER])\n", "        limits = TIER_LIMITS.get(user_tier, TIER_LIMITS[\"pro\"])\n"),
    ]),
]


@pytest.mark.parametrize(("why", "check", "replace"), WRONG, ids=[w[0] for w in WRONG])
def test_wrong_submission_is_caught(why: str, check: str, replace: list[tuple[str, str]], tmp_path: Path) -> None:
    source = SOLUTION.read_text()
    for find, new in replace:
        assert find in source, f"{why}: {find!r} no longer occurs in the solution"
        source = source.replace(find, new, 1)
    (tmp_path / SOLUTION.name).write_text(source)
    report = run_checks("ex07", tmp_path)
    result = next(x for x in report.results if x.id == f"ex07.{check}")
    assert result.status == "fail", f"{why}: {check} {result.status}: {result.detail}"


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
