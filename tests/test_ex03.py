"""Exercise 03 beyond the checks: the SDK facts the notebook teaches, the contract as data, the
reference's helpers, the scenarios the checks draw, and speed."""

from __future__ import annotations

import email.utils
import time

import httpx2
import openai
import pytest
from openai import _constants

from labkit import faults, lint_request
from labkit.checks import ex03 as checks
from labkit.checks import load_learner_module, run_checks
from labkit.clock import Clock
from labkit.course.ex03 import CONTRACT, LESSON_PARAMS, MODEL, PROBE_MESSAGES
from labkit.paths import solutions_dir
from labkit.replay import load_cassette, resolve_cassette


@pytest.fixture(scope="module")
def ref():
    return load_learner_module(solutions_dir() / "ex03_production_client.py")


def _status_error(status: int, headers: dict[str, str] | None = None, body: dict | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    sdk = openai.OpenAI(api_key="test-no-key", max_retries=0)
    return sdk._make_status_error(f"Error code: {status}", body=body or {"error": {"message": "x"}}, response=response)


def test_the_sdk_still_behaves_as_notebook_03_says() -> None:
    """If an SDK upgrade changes these, notebook 03's 'what the SDK already does' section and the contract must change too."""
    assert (_constants.DEFAULT_MAX_RETRIES, _constants.INITIAL_RETRY_DELAY, _constants.MAX_RETRY_DELAY) == (2, 0.5, 8.0)
    assert _constants.MAX_RETRY_AFTER_DELAY == CONTRACT.max_retry_after == 120
    for step, attempts in (("401", 1), ("400", 1), ("429", 3), ("503", 3), ("408", 3), ("timeout", 3),
                           ("429 retry-after=300", 1), ("503 x-should-retry=false", 1)):
        clock = Clock()
        sdk = faults.client(", ".join([step] * 3), "ex03", clock=clock, max_retries=2)
        with pytest.raises(openai.OpenAIError):
            sdk.chat.completions.create(model=MODEL, messages=PROBE_MESSAGES)
        assert len(sdk._labkit_transport.attempts) == attempts, step


def test_the_sdk_error_classes_are_the_contracts() -> None:
    for status, name in CONTRACT.status_errors.items():
        assert type(_status_error(status)).__name__ == name, status


def test_with_options_shares_the_transport_and_drops_retries() -> None:
    sdk = faults.client("503, 503, 503", "ex03", clock=Clock(), max_retries=2)
    quiet = sdk.with_options(max_retries=0)
    with pytest.raises(openai.InternalServerError):
        quiet.chat.completions.create(model=MODEL, messages=PROBE_MESSAGES)
    assert len(sdk._labkit_transport.attempts) == 1


def test_invalid_request_error_is_gone() -> None:
    assert not hasattr(openai, "InvalidRequestError")
    assert issubclass(openai.BadRequestError, openai.APIStatusError)
    assert issubclass(openai.AuthenticationError, openai.APIError)  # why the lesson's catch-all retries 401


def test_the_lessons_request_is_a_labelled_demonstration_of_a_400() -> None:
    findings = {f.code for f in lint_request(messages=PROBE_MESSAGES, **LESSON_PARAMS) if f.severity == "error"}
    assert {"max-tokens-unsupported", "sampling-unsupported"} <= findings
    cassette = load_cassette(resolve_cassette("ex03"))
    errors = [i for i in cassette.interactions if i.status == 400]
    assert len(errors) == 1 and "rejected with 400" in errors[0].label


def test_the_course_requests_lint_clean() -> None:
    cassette = load_cassette(resolve_cassette("ex03"))
    for inter in cassette.interactions:
        if inter.status == 200:
            body = dict(inter.body)
            assert not [f for f in lint_request(**body) if f.severity == "error"], inter.label


def test_both_apis_are_recorded_with_cache_writes_then_reads() -> None:
    cassette = load_cassette(resolve_cassette("ex03"))
    paths = {i.path for i in cassette.interactions}
    assert paths == {"/v1/chat/completions", "/v1/responses"}
    labels = [i.label for i in cassette.interactions]
    assert sum("cache written" in x for x in labels) == 2 and sum("cache read" in x for x in labels) == 4


def test_retry_after_parsing(ref) -> None:
    assert ref.retry_after_seconds({"retry-after-ms": "2500", "retry-after": "7"}) == 2.5
    assert ref.retry_after_seconds({"retry-after": "3"}) == 3.0
    assert ref.retry_after_seconds({"retry-after": "soon"}) is None
    assert ref.retry_after_seconds({}) is None and ref.retry_after_seconds(None) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= ref.retry_after_seconds({"retry-after": date}) <= 31


def test_taxonomy(ref) -> None:
    for status in (*sorted(CONTRACT.retry_statuses), *CONTRACT.server_statuses):
        assert ref.is_retryable(_status_error(status)), status
    for status in (*CONTRACT.fatal_statuses, *CONTRACT.unnamed_statuses):
        assert not ref.is_retryable(_status_error(status)), status
    quota = _status_error(429, body={"error": {"message": "no credit", "type": "insufficient_quota", "code": "insufficient_quota"}})
    assert not ref.is_retryable(quota)
    assert not ref.is_retryable(_status_error(503, {"x-should-retry": "false"}))
    assert ref.is_retryable(_status_error(400, {"x-should-retry": "true"}))
    request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")
    assert ref.is_retryable(openai.APITimeoutError(request=request))
    assert ref.is_retryable(openai.APIConnectionError(request=request))
    assert not ref.is_retryable(ValueError("not an API error"))


def test_backoff_ceilings(ref) -> None:
    assert [ref.backoff_ceiling(n, 1.0, 5.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert [CONTRACT.ceiling(n, 1.0, 5.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_scenarios_cover_every_status_the_contract_names() -> None:
    sent = {s for sc in (*checks.RETRIED, *checks.NOT_RETRIED, *checks.MIXED) for s in sc.steps}
    heads = {s.split()[0] for s in sent}
    named = {*CONTRACT.retry_statuses, *CONTRACT.server_statuses, *CONTRACT.fatal_statuses, *CONTRACT.unnamed_statuses}
    assert {str(s) for s in named} <= heads
    assert {"timeout", "reset"} <= heads
    assert any("insufficient_quota" in s for s in sent) and any("x-should-retry=true" in s for s in sent)
    assert any("x-should-retry=false" in s for s in sent)
    spellings = " ".join(s for sc in checks.RETRY_AFTER for s in sc.steps)
    assert "retry-after-ms=" in spellings and "{date+" in spellings and "retry-after=121" in spellings
    assert min(len(sc.steps) for sc in checks.MIXED) >= 3  # mixed means at least two failures before the answer


def test_an_http_date_step_becomes_a_real_date() -> None:
    step = checks._resolve("503 retry-after={date+30}")
    value = dict(step.headers)["retry-after"]
    assert 28 <= email.utils.parsedate_to_datetime(value).timestamp() - time.time() <= 31
    assert checks._asked("503 retry-after={date+30}") == (30.0, 1.5)
    assert checks._asked("429 retry-after-ms=2500 retry-after=7")[0] == 2.5


def test_the_planted_key_reaches_the_request_and_is_caught_in_a_log(ref, caplog) -> None:
    import logging

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "headers %s", ({"authorization": f"Bearer {checks.SECRET_KEY}"},), None)
    assert checks._leak(record) is not None
    clean = logging.LogRecord("x", logging.INFO, __file__, 1, "attempt 1", (), None)
    assert checks._leak(clean) is None


def test_the_whole_check_run_is_fast() -> None:
    run_checks("ex03", solutions_dir())  # warm: imports, the reference's observations, the cassette
    start = time.perf_counter()
    report = run_checks("ex03", solutions_dir())
    elapsed = time.perf_counter() - start
    assert report.passed
    # About 0.25 s on a quiet machine; the bound leaves room for a busy one, and still catches any real sleep
    # (the scenarios ask for waits of 0.5 to 120 s).
    assert elapsed < 2.0, f"ex03's checks took {elapsed:.2f} s from a warm process; they must not sleep for real"
