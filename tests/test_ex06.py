"""Exercise 06: the reference client's requests match the recordings, its books balance, the checks
catch issue 11's classes of mistakes, and they pass on a separately started Redis (REDIS_URL) as well
as on labkit's private one."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import openai
import pytest
import redis

import labkit
from labkit import catalog, faults, redisd
from labkit.checks import get_exercise, load_learner_module, run_checks
from labkit.checks.redis_checks import concurrently
from labkit.costs import estimate
from labkit.course import ex06 as course
from labkit.course import ex07
from labkit.course import models as roles
from labkit.replay import load_cassette, resolve_cassette

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ex06_enterprise_client.py"
sol = load_learner_module(SOLUTION)


@pytest.fixture
def r() -> redis.Redis:
    client = redisd.connect()
    prefix = redisd.fresh_prefix("test06")
    client.test_prefix = prefix  # type: ignore[attr-defined]
    yield client
    redisd.drop_prefix(client, prefix)


def make(r: redis.Redis, client=None, **kw):
    return sol.EnterpriseGPTClient(client or labkit.client(["ex06", "ex06_day"]), r, prefix=r.test_prefix, **kw)  # type: ignore[attr-defined]


def test_premium_and_cheap_are_the_course_roles_and_agree_with_lesson_07() -> None:
    assert (course.PREMIUM, course.CHEAP) == (roles.FLAGSHIP, roles.FAST) == (ex07.PREMIUM, ex07.CHEAP)
    assert course.CASCADE[0] == course.PREMIUM and course.CASCADE[-1] == course.CHEAP
    prompt = labkit.count_tokens(course.RESET, course.PREMIUM)
    limit = course.MAX_COMPLETION_TOKENS
    assert estimate(prompt, limit, course.CHEAP).total_usd < estimate(prompt, limit, course.PREMIUM).total_usd


def test_every_model_of_the_cascade_accepts_the_default_request() -> None:
    """complete() sends the same effort and limit to every model it falls back to."""
    for model in course.CASCADE:
        info = catalog.get_model(model)
        assert info.status == "active" and course.EFFORT in info.efforts, model
        body = {"model": model, "messages": course.RESET, "reasoning_effort": course.EFFORT,
                "max_completion_tokens": course.MAX_COMPLETION_TOKENS}
        assert not [f for f in labkit.lint_request(**body) if f.severity == "error"], model
    for params in (course.TAGLINE_PARAMS, course.TICKET_PARAMS):
        assert not [f for f in labkit.lint_request(messages=course.TAGLINE, **params) if f.severity == "error"]


def test_the_contract_splits_every_status_once() -> None:
    assert not set(course.RETRYABLE_STATUSES) & set(course.FINAL_STATUSES)
    c = faults.client(", ".join(map(str, (*course.RETRYABLE_STATUSES, *course.RETRYABLE_FAULTS, *course.FINAL_STATUSES))), "ex06")
    seen = []
    for _ in range(len(course.RETRYABLE_STATUSES) + len(course.RETRYABLE_FAULTS) + len(course.FINAL_STATUSES)):
        with pytest.raises(openai.OpenAIError) as err:
            c.chat.completions.create(model=course.PREMIUM, messages=course.RESET)
        seen.append(sol.is_retryable(err.value))
    n = len(course.RETRYABLE_STATUSES) + len(course.RETRYABLE_FAULTS)
    assert seen == [True] * n + [False] * len(course.FINAL_STATUSES)


def test_every_recorded_request_is_valid_except_the_lessons_own() -> None:
    for name in ("ex06", "ex06_day"):
        for inter in load_cassette(resolve_cassette(name)).interactions:
            errors = [f.code for f in labkit.lint_request(**inter.body) if f.severity == "error"]
            if inter.label.startswith("the lesson's request"):
                assert inter.status == 400 and "max-tokens-unsupported" in errors and "sampling-unsupported" in errors
            else:
                assert inter.status == 200 and not errors, (inter.label, errors)


def test_every_request_of_the_solution_is_an_exact_recording(r: redis.Redis) -> None:
    client = labkit.client(["ex06", "ex06_day"])
    ent = make(r, client)
    ent.complete(course.RESET, user_id="a")
    ent.complete(course.RESET, user_id="a", model=course.CHEAP)
    ent.complete(course.TAGLINE, user_id="a", **course.TAGLINE_PARAMS)
    ent.complete(course.ticket_messages(course.DAY_TICKETS[0]), user_id="a", **course.TICKET_PARAMS)
    ent.complete(course.BUDGET_PROBE, user_id="a", max_completion_tokens=course.BUDGET_MAX_OUT, cache_ttl=0)
    served = labkit.transport_of(client).served
    assert len(served) == 5 and all(s.tier == "exact" for s in served), [(s.index, s.note) for s in served]


def test_the_lessons_request_gets_the_recorded_400() -> None:
    with pytest.raises(openai.BadRequestError) as err:
        labkit.client("ex06").chat.completions.create(**course.LESSON_REQUEST)
    assert err.value.code == "unsupported_parameter"


def test_budget_reservations_settle_to_zero_and_money_is_exact(r: redis.Redis) -> None:
    ent = make(r, faults.client((), "ex06"), monthly_budget_usd=0.05, on_budget="block", requests_per_minute=10**6)

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
    assert ent.spend() <= 0.05


@pytest.mark.parametrize("scenario", ["400", "401", "503, timeout, 429"])
def test_a_failed_call_releases_its_reservation(r: redis.Redis, scenario: str) -> None:
    ent = make(r, faults.client(scenario, "ex06"))
    with pytest.raises(openai.OpenAIError):
        ent.complete(course.RESET, user_id="a")
    assert int(r.get(ent._key(ent.month(), "reserved"))) == 0


def test_cache_hit_is_not_rate_limited(r: redis.Redis) -> None:
    ent = make(r, requests_per_minute=1)
    ent.complete(course.RESET, user_id="a")
    assert ent.complete(course.RESET, user_id="a").cached  # the second would be over the limit
    with pytest.raises(sol.RateLimitExceeded):
        ent.complete(course.EXPORT, user_id="a")


#: Wrong submissions beyond tests/mutants/ex06.toml (one mistake each, issue 11's classes): the check that must fail.
WRONG: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("budget reserved before the rate limit, kept when the limit refuses", "budget-release", [
        ("        if not self.check_rate_limit(user_id):\n            raise RateLimitExceeded(user_id, self.window_s - self.clock() % self.window_s)\n\n        month = self.month()\n        models = CASCADE[CASCADE.index(model):] if model in CASCADE else (model,)\n        amount = math.ceil(self.max_cost(messages, max_completion_tokens, models) * NANO)\n        if not self._reserve(month, amount):\n",
         "        month = self.month()\n        models = CASCADE[CASCADE.index(model):] if model in CASCADE else (model,)\n        amount = math.ceil(self.max_cost(messages, max_completion_tokens, models) * NANO)\n        reserved = self._reserve(month, amount)\n        if not self.check_rate_limit(user_id):\n            raise RateLimitExceeded(user_id, self.window_s - self.clock() % self.window_s)\n        if not reserved:\n"),
    ]),
    ("408 and 409 not retried", "fallback-retryable", [
        ("    return isinstance(err, openai.APIStatusError) and err.status_code in RETRYABLE_STATUSES\n",
         "    return isinstance(err, (openai.RateLimitError, openai.InternalServerError))\n"),
    ]),
    ("the cascade always restarts from PREMIUM", "fallback-retryable", [
        ("        models = CASCADE[CASCADE.index(model):] if model in CASCADE else (model,)\n",
         "        models = CASCADE if model in CASCADE else (model,)\n"),
    ]),
    ("temperature NO_CACHE_ABOVE itself not cached", "cache-policy", [
        ("request[\"temperature\"] > NO_CACHE_ABOVE", "request[\"temperature\"] >= NO_CACHE_ABOVE"),
    ]),
    ("spend_by_user keys read with str(), not decoded", "attribution", [
        ("        return {k.decode(): int(v) / NANO for k, v in sorted(raw.items())}\n        ### END SOLUTION\n\n    def spend_by_feature",
         "        return {str(k): int(v) / NANO for k, v in sorted(raw.items())}\n        ### END SOLUTION\n\n    def spend_by_feature"),
    ]),
    ("user ids stripped in the rate-limit key", "rate-limit-enforced", [
        ("        key = f\"{self.prefix}rl:{user_id}:{window}\"\n",
         "        key = f\"{self.prefix}rl:{user_id.strip()}:{window}\"\n"),
    ]),
    ("the default reasoning effort never sent", "params-kept", [
        ("        request = {\"model\": model, \"messages\": list(messages), \"reasoning_effort\": reasoning_effort,\n",
         "        request = {\"model\": model, \"messages\": list(messages),\n"),
    ]),
]


@pytest.mark.parametrize(("why", "check", "replace"), WRONG, ids=[w[0] for w in WRONG])
def test_wrong_submission_is_caught(why: str, check: str, replace: list[tuple[str, str]], tmp_path: Path) -> None:
    source = SOLUTION.read_text()
    for find, new in replace:
        assert find in source, f"{why}: {find!r} no longer occurs in the solution"
        source = source.replace(find, new, 1)
    (tmp_path / SOLUTION.name).write_text(source)
    report = run_checks("ex06", tmp_path)
    result = next(x for x in report.results if x.id == f"ex06.{check}")
    assert result.status == "fail", f"{why}: {check} {result.status}: {result.detail}"


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
