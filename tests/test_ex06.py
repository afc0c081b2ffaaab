"""Exercise 06: the reference client's requests match the recordings, its books balance, and the
checks pass on a separately started Redis (REDIS_URL) as well as on labkit's private one."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import redis

import labkit
from labkit import catalog, faults, redisd
from labkit.checks import get_exercise, load_learner_module, run_checks
from labkit.checks.redis_checks import concurrently
from labkit.costs import estimate
from labkit.course import ex06 as course

ROOT = Path(__file__).resolve().parent.parent
sol = load_learner_module(ROOT / "solutions" / "ex06_enterprise_client.py")


@pytest.fixture
def r() -> redis.Redis:
    client = redisd.connect()
    prefix = redisd.fresh_prefix("test06")
    client.test_prefix = prefix  # type: ignore[attr-defined]
    yield client
    redisd.drop_prefix(client, prefix)


def make(r: redis.Redis, client=None, **kw):
    return sol.EnterpriseGPTClient(client or labkit.client(["ex06", "ex06_day"]), r, prefix=r.test_prefix, **kw)  # type: ignore[attr-defined]


def test_the_models_are_sampling_models_premium_first_and_dearest() -> None:
    """complete() sends temperature, so every model it may use must accept it; the fallback must be cheaper."""
    assert sol.CASCADE[0] == sol.PREMIUM and sol.CHEAP in sol.CASCADE
    for model in sol.CASCADE:
        assert catalog.get_model(model).accepts_temperature, model
    prompt = labkit.count_tokens(course.RESET, sol.PREMIUM)
    limit = course.MAX_COMPLETION_TOKENS
    assert estimate(prompt, limit, sol.CHEAP).total_usd < estimate(prompt, limit, sol.PREMIUM).total_usd


def test_every_request_of_the_solution_is_an_exact_recording(r: redis.Redis) -> None:
    client = labkit.client("ex06")
    ent = make(r, client)
    ent.complete(course.RESET, user_id="a")
    ent.complete(course.RESET, user_id="a", model=sol.CHEAP)
    ent.complete(course.RESET, user_id="a", temperature=0.2)
    ent.complete(course.BUDGET_PROBE, user_id="a", max_completion_tokens=course.BUDGET_MAX_OUT, cache_ttl=0)
    served = labkit.transport_of(client).served
    assert len(served) == 4 and all(s.tier == "exact" for s in served), [(s.index, s.note) for s in served]


def test_budget_reservations_settle_to_zero_and_money_is_exact(r: redis.Redis) -> None:
    ent = make(r, faults.client((), "ex06"), monthly_budget_usd=0.01, on_budget="block", requests_per_minute=10**6)

    def user(i: int) -> None:
        try:
            while True:
                ent.complete(course.BUDGET_PROBE, user_id=f"u{i}", max_completion_tokens=course.BUDGET_MAX_OUT, cache_ttl=0)
        except sol.BudgetExceeded:
            pass

    assert not concurrently(user)  # 8 users at once
    month = ent.month()
    assert int(r.get(ent._key(month, "reserved"))) == 0
    spent = int(r.get(ent._key(month, "spent")))
    assert spent == sum(int(v) for v in r.hgetall(ent._key(month, "by_user")).values())
    assert ent.spend() <= 0.01


def test_a_failed_call_releases_its_reservation(r: redis.Redis) -> None:
    ent = make(r, faults.client("400", "ex06"))
    with pytest.raises(Exception):
        ent.complete(course.RESET, user_id="a")
    assert int(r.get(ent._key(ent.month(), "reserved"))) == 0


def test_retryable_errors() -> None:
    c = faults.client("429, 500, 503, timeout, reset, 400, 401, 404, 422", "ex06")
    seen = []
    for _ in range(9):
        try:
            c.chat.completions.create(model=course.PREMIUM, messages=course.RESET)
        except Exception as err:  # noqa: BLE001
            seen.append(sol.is_retryable(err))
    assert seen == [True] * 5 + [False] * 4


def test_cache_hit_is_not_rate_limited(r: redis.Redis) -> None:
    ent = make(r, requests_per_minute=1)
    ent.complete(course.RESET, user_id="a")
    assert ent.complete(course.RESET, user_id="a").cached  # the second would be over the limit
    with pytest.raises(sol.RateLimitExceeded):
        ent.complete(course.EXPORT, user_id="a")


def test_checks_pass_on_a_separately_started_server(monkeypatch: pytest.MonkeyPatch) -> None:
    server = redisd.start_server()
    try:
        monkeypatch.setenv("REDIS_URL", server.url)
        direct = redis.Redis(unix_socket_path=str(server.socket))
        before = direct.info("stats")["total_commands_processed"]
        report = run_checks("ex06", ROOT / "solutions")
        failing = [(x.id, x.detail) for x in report.results if x.status != "pass"]
        assert not failing
        assert direct.info("stats")["total_commands_processed"] - before > 500  # the checks really used it
        assert direct.dbsize() == 0  # and cleaned up after themselves
    finally:
        server.stop()


def test_checks_report_an_unreachable_redis_as_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "unix:///nonexistent/labkit/redis.sock")
    report = run_checks("ex06", ROOT / "solutions")
    by_id = {x.id: x for x in report.results}
    assert by_id["ex06.cache-hit"].status == "error" and "not reachable" in by_id["ex06.cache-hit"].detail


def test_toml_and_mutants_cover_each_check() -> None:
    ids = {c.id.split(".", 1)[1] for c in get_exercise("ex06").checks}
    assert {m["check"] for m in tomllib.loads((ROOT / "tests" / "mutants" / "ex06.toml").read_text())["mutant"]} == ids
    assert json.loads((ROOT / "cassettes" / "ex06.json").read_text())["metadata"]["labkit"]["provenance"] == "authored"
