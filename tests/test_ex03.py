"""Exercise 03 beyond the checks: the SDK facts the notebook teaches, the reference's helpers, and speed."""

from __future__ import annotations

import email.utils
import time

import httpx2
import openai
import pytest
from openai import _constants

from labkit import faults
from labkit.checks import load_learner_module, run_checks
from labkit.clock import Clock
from labkit.course.ex03 import MODEL, PROBE_MESSAGES
from labkit.paths import solutions_dir


@pytest.fixture(scope="module")
def ref():
    return load_learner_module(solutions_dir() / "ex03_production_client.py")


def _status_error(status: int, headers: dict[str, str] | None = None, body: dict | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    sdk = openai.OpenAI(api_key="test-no-key", max_retries=0)
    return sdk._make_status_error(f"Error code: {status}", body=body or {"error": {"message": "x"}}, response=response)


def test_the_sdk_still_behaves_as_notebook_03_says() -> None:
    """If an SDK upgrade changes these, notebook 03's 'what the SDK already does' section must change too."""
    assert (_constants.DEFAULT_MAX_RETRIES, _constants.INITIAL_RETRY_DELAY, _constants.MAX_RETRY_DELAY) == (2, 0.5, 8.0)
    assert _constants.MAX_RETRY_AFTER_DELAY == 120
    for step, attempts in (("401", 1), ("400", 1), ("429", 3), ("503", 3), ("408", 3), ("timeout", 3),
                           ("429 retry-after=300", 1), ("503 x-should-retry=false", 1)):
        clock = Clock()
        sdk = faults.client(", ".join([step] * 3), "ex03", clock=clock, max_retries=2)
        with pytest.raises(openai.OpenAIError):
            sdk.chat.completions.create(model=MODEL, messages=PROBE_MESSAGES)
        assert len(sdk._labkit_transport.attempts) == attempts, step


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


def test_retry_after_parsing(ref) -> None:
    assert ref.retry_after_seconds({"retry-after-ms": "2500", "retry-after": "7"}) == 2.5
    assert ref.retry_after_seconds({"retry-after": "3"}) == 3.0
    assert ref.retry_after_seconds({"retry-after": "soon"}) is None
    assert ref.retry_after_seconds({}) is None and ref.retry_after_seconds(None) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= ref.retry_after_seconds({"retry-after": date}) <= 31


def test_taxonomy(ref) -> None:
    for status in (408, 409, 429, 500, 502, 503):
        assert ref.is_retryable(_status_error(status)), status
    for status in (400, 401, 403, 404, 422):
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


def test_the_whole_check_run_is_fast() -> None:
    start = time.perf_counter()
    report = run_checks("ex03", solutions_dir())
    elapsed = time.perf_counter() - start
    assert report.passed
    assert elapsed < 1.0, f"ex03's checks took {elapsed:.2f} s; they must not sleep for real"
