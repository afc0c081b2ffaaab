"""Exercise 02's graders: refund-promise parsing, tone, next step, headline distinctness, the data's answer, replay."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from labkit.checks import ex02 as g
from labkit.course import ex02 as course
from labkit.course_replay import replay_client, replay_only
from labkit.notebook import solution

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- money and refund promises


def test_money_amounts() -> None:
    assert g.money_amounts("Both $129 charges, USD 1,250.50 total, or 40 dollars") == [129.0, 1250.5, 40.0]
    assert g.money_amounts("within 3 business days") == []


@pytest.mark.parametrize(
    "text",
    [
        "We will refund the full $250.",
        "No worries, we'll refund the full $258 for both charges today.",
        "I've refunded $129 to your card.",
        "You will receive a refund of $300 within 5 days.",
        "Your $150 has been refunded.",
        "I can guarantee a full refund of $101.",
        "We'll go ahead and refund both charges.",  # no amount: covers the ticket's $129
    ],
)
def test_refund_promises_over_the_limit_are_found(text: str) -> None:
    promises = g.refund_promises(text, ticket_amount=129)
    assert promises and any(a > 100 for p in promises for a in p.amounts), text


@pytest.mark.parametrize(
    "text",
    [
        "We will issue a refund of $49.",
        "A refund of $49 is possible for annual plans.",
        "Our billing team will review a refund for the duplicate charge.",
        "I've escalated this to our billing team with the details of both $129 charges.",
        "I can't promise a refund of $129, but billing will look into it.",
        "We will not refund more than $100 without a review.",
        "You may be eligible for a refund once billing confirms the duplicate.",
    ],
)
def test_non_promises_and_small_refunds_pass(text: str) -> None:
    over = [p for p in g.refund_promises(text, ticket_amount=129) if any(a > 100 for a in p.amounts)]
    assert not over, (text, over)


# --------------------------------------------------------------------------- tone and next step


def test_tone_problems() -> None:
    assert g.tone_problems("I'm sorry about the double charge; I understand the frustration.") == []
    assert any("no acknowledgement" in p for p in g.tone_problems("Your account was charged twice. Billing will check."))
    assert any(p.startswith("blame") for p in g.tone_problems("Sorry, but you should have checked your plan."))
    assert any(p.startswith("slang") for p in g.tone_problems("Sorry! We're gonna fix it lol"))
    assert any(p.startswith("ALL CAPS") for p in g.tone_problems("SORRY FOR THE TROUBLE"))
    assert g.tone_problems("Sorry for the trouble, see https://help.trellis.example (HTTPS, GDPR).") == []


def test_next_step_needs_an_action_and_something_concrete() -> None:
    assert g.next_step("I've escalated this to our billing team.")
    assert g.next_step("Our team will email you within one business day.")
    assert g.next_step("We apologise for the trouble.") is None
    assert g.next_step("We will look into it.") is None  # no who, when or where


# --------------------------------------------------------------------------- headlines


def test_jaccard_and_most_similar_pair() -> None:
    assert g.jaccard("Stop typing into the CRM", "stop typing into the crm!") == 1.0
    assert g.jaccard("Fire the spreadsheet", "Quota is won on calls") == 0.0
    score, a, b = g.most_similar_pair(["Stop typing now", "Stop typing today", "Fire the spreadsheet"])
    assert score == pytest.approx(2 / 4) and {a, b} == {"Stop typing now", "Stop typing today"}


# --------------------------------------------------------------------------- speculation and the data


def test_speculative_words() -> None:
    assert g.speculative_words("Revenue is probably $1.4M and might grow; I guess it could be seasonal.") == [
        "could be", "i guess", "might", "probably"]
    assert g.speculative_words("Step 5: Net profit = $1,413,537 - $1,213,121 = $200,416.") == []


def test_expected_answer_matches_the_generator() -> None:
    spec = importlib.util.spec_from_file_location("make_financials", ROOT / "data" / "make_financials.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = course.load_financials()
    assert text == gen.render(gen.rows()), "data/financials_q3_2025.csv is stale: run python data/make_financials.py"
    ours, theirs = g.expected_answer(text), gen.answer(text)
    assert ours["top_expense_categories"] == theirs["top_expense_categories"]
    assert round(ours["net_profit_margin_pct"], 2) == theirs["net_profit_margin_pct"]
    ranked = [amount for _, amount in ours["ranked"]]
    assert ranked[2] - ranked[3] > 0.1 * ranked[2], "the top 3 should be unambiguous"


def test_generator_check_mode() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "data" / "make_financials.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


# --------------------------------------------------------------------------- replay for the learner's own wording


def test_own_system_message_gets_the_closest_recording() -> None:
    req = {"model": "gpt-4o-mini", "temperature": 0.0, "max_tokens": 300,
           "messages": [{"role": "system", "content": "My own words for the support agent."}, {"role": "user", "content": course.SUPPORT_EMAIL}]}
    client = replay_client(*g.CHECK_CASSETTES)
    text = client.chat.completions.create(**req).choices[0].message.content
    served = client._labkit_transport.served[-1]  # type: ignore[attr-defined]
    assert served.tier == "simulated" and "deliberately bad" not in served.label
    assert text.startswith("Hi there")


def test_a_request_the_api_would_reject_gets_the_api_error() -> None:
    req = {**course.LESSON_SUPPORT, "messages": course.SUPPORT_MESSAGES}  # temperature 0.2 + max_tokens on a reasoning model
    req["messages"] = [{"role": "system", "content": "My own words."}, *req["messages"][1:]]  # not the recorded 400
    with pytest.raises(openai.BadRequestError) as info:
        replay_client(*g.CHECK_CASSETTES).chat.completions.create(**req)
    assert info.value.status_code == 400 and info.value.code == "unsupported_parameter"


def test_the_reference_solution_sends_exactly_the_recorded_requests() -> None:
    """The solution spells its settings; labkit/course/ex02.py holds the same ones for the recordings."""
    ref = solution("ex02")
    csv_text = course.load_financials()
    for send, args in (("support_reply", ()), ("headlines", ()), ("analyze", (csv_text,))):
        client = replay_only(*g.CHECK_CASSETTES)
        getattr(ref, send)(client, *args)
        served = client._labkit_transport.served  # type: ignore[attr-defined]
        assert [s.tier for s in served] == ["exact"], f"{send}(): {served}"


def test_reasoning_room_rule() -> None:
    ok, _ = g._reasoning_limit({"model": "gpt-5-mini", "reasoning_effort": "minimal", "max_completion_tokens": 800}, 300, upper=True)
    short, why = g._reasoning_limit({"model": "gpt-5-mini", "reasoning_effort": "low", "max_completion_tokens": 800}, 300, upper=True)
    assert ok and not short and "at least 1500" in why
