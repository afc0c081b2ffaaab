"""Exercise 02's graders: the heuristics, the contract, the simulator, and every mutant caught for its reason."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import openai
import pytest

from labkit.catalog import get_model
from labkit.checks import ex02 as g
from labkit.checks import get_exercise, run_checks
from labkit.clock import course_date
from labkit.course import ex02 as course
from labkit.course.models import DEFAULT, FAST, FLAGSHIP, REASONING
from labkit.lint import lint_request
from labkit.notebook import solution
from labkit.simulate import api_error_for

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = tomllib.loads((ROOT / "tests" / "mutants" / "ex02.toml").read_text())["mutant"]


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


# --------------------------------------------------------------------------- tone, next step, headlines, speculation


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


def test_jaccard_and_most_similar_pair() -> None:
    assert g.jaccard("Stop typing into the CRM", "stop typing into the crm!") == 1.0
    assert g.jaccard("Fire the spreadsheet", "Quota is won on calls") == 0.0
    score, a, b = g.most_similar_pair(["Stop typing now", "Stop typing today", "Fire the spreadsheet"])
    assert score == pytest.approx(2 / 4) and {a, b} == {"Stop typing now", "Stop typing today"}


def test_speculative_words() -> None:
    assert g.speculative_words("Revenue is probably $1.4M and might grow; I guess it could be seasonal.") == [
        "could be", "i guess", "might", "probably"]
    assert g.speculative_words("Step 5: Net profit = $1,413,537 - $1,213,121 = $200,416.") == []


def test_format_headlines_follows_the_contract() -> None:
    reply = g.format_headlines(["A: b", '"C" d'], ")", ("\u201c", "\u201d"), True, "\r\n")
    assert reply == '1) \u201cA: b\u201d\r\n\r\n2) \u201c"C" d\u201d\r\n'


# --------------------------------------------------------------------------- the data


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


# --------------------------------------------------------------------------- the contract and the line-up


def test_room_for_reasoning_follows_the_documented_model() -> None:
    assert course.reasoning_room("none", 300) == 0
    assert course.minimum_cap("low", 300) == 620
    assert course.minimum_cap("medium", 1_500) == 6_044
    rooms = [course.reasoning_room(e, 1_500) for e in ("minimal", "low", "medium", "high", "xhigh", "max")]
    assert rooms == sorted(rooms), "more effort, more room"
    assert course.minimum_cap("medium", course.ANALYSIS_VISIBLE) <= course.OPENAI_STARTING_CAP


def test_hints_quote_the_numbers_the_contract_computes() -> None:
    hints = {spec.id.split(".", 1)[1]: spec.hint for spec in get_exercise("ex02").checks}
    assert f"{course.minimum_cap('low', course.SUPPORT_VISIBLE):,}" in hints["t1-output-limit"]
    assert f"{course.minimum_cap('low', course.HEADLINES_VISIBLE):,}" in hints["t2-output-limit"]
    assert f"{course.minimum_cap('medium', course.HEADLINES_VISIBLE):,}" in hints["t2-output-limit"]
    assert f"{course.minimum_cap('medium', course.ANALYSIS_VISIBLE):,}" in hints["t3-output-limit"]
    assert f"{course.minimum_cap('high', course.ANALYSIS_VISIBLE):,}" in hints["t3-output-limit"]
    assert f"{course.OPENAI_STARTING_CAP:,}" in hints["t3-output-limit"]


@pytest.mark.parametrize(("name", "request_"), list(g.iter_course_requests()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_course_requests_lint_clean(name: str, request_: dict[str, Any]) -> None:
    errors = [f for f in lint_request(today=course_date(), **request_) if f.severity != "info"]
    assert errors == [], (name, errors)


def test_the_course_roles_fit_the_contract() -> None:
    assert (get_model(FAST).price_output or 0) <= course.CHEAP_OUTPUT_MAX
    assert get_model(FAST).accepts_sampling("none") and get_model(DEFAULT).accepts_sampling("none")
    assert not get_model(FLAGSHIP).accepts_sampling("low") and not get_model(REASONING).accepts_sampling(None)
    assert (get_model(FLAGSHIP).price_output or 0) >= (get_model(course.CREATIVE_PRICE_ROLE).price_output or 0)


def test_the_lessons_requests_are_what_the_api_rejects_today() -> None:
    """gpt-5-mini and gpt-5: 400 for their parameters; o1: 404, shut down."""
    messages = [{"role": "user", "content": "hi"}]
    support = api_error_for({**course.LESSON_SUPPORT, "messages": messages})
    headlines = api_error_for({**course.LESSON_HEADLINES, "messages": messages})
    analysis = api_error_for({**course.LESSON_ANALYSIS, "messages": messages})
    assert support and support["status"] == 400 and headlines and headlines["status"] == 400
    assert analysis and analysis["status"] == 404 and analysis["code"] == "model_not_found"


# --------------------------------------------------------------------------- what the API receives


def test_wire_reads_either_api_for_meaning() -> None:
    chat = g.wire({"model": FAST, "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
                   "reasoning_effort": "none", "temperature": 0.2, "max_completion_tokens": 300})
    resp = g.wire({"model": FAST, "instructions": "be brief", "input": "hi", "reasoning": {"effort": "none"},
                   "temperature": 0.2, "max_output_tokens": 300, "text": {"format": course.ANALYSIS_TEXT_FORMAT}})
    assert (chat.api, resp.api) == ("chat", "responses")
    for sent in (chat, resp):
        assert (sent.effort, sent.sampling("temperature"), sent.instructions, sent.user) == ("none", 0.2, "be brief", "hi")
    assert chat.cap == ("max_completion_tokens", 300) and resp.cap == ("max_output_tokens", 300)
    assert resp.output_format == "json_schema" and chat.output_format == ""


def test_wire_names_arguments_the_sdk_refuses() -> None:
    with pytest.raises(g._Fail, match="refuses"):
        g.wire({"model": FAST, "messages": [], "max_output_tokens": 10})  # a Responses parameter in Chat Completions


# --------------------------------------------------------------------------- the simulator for the learner's own wording


def test_own_system_message_gets_the_course_answer_simulated() -> None:
    req = {**course.SUPPORT_SAMPLING, "messages": [{"role": "system", "content": "My own words for the support agent."},
                                                   {"role": "user", "content": course.SUPPORT_EMAIL}]}
    client = g.replay_client()
    text = client.chat.completions.create(**req).choices[0].message.content
    served = client._labkit_transport.served[-1]  # type: ignore[attr-defined]
    assert served.tier == "simulated" and "deliberately bad" not in served.label
    assert text and text.startswith("Hi there")


def test_the_responses_api_with_a_string_input_is_simulated_too() -> None:
    client = g.replay_client()
    got = client.responses.create(model=DEFAULT, instructions="Support agent, my words.", input=course.SUPPORT_EMAIL,
                                  reasoning={"effort": "none"}, temperature=0.1, max_output_tokens=250)
    assert "billing team" in got.output_text


def test_a_request_the_api_would_reject_gets_the_api_error() -> None:
    req = {**course.SUPPORT_SAMPLING, "reasoning_effort": "medium", "messages": course.SUPPORT_MESSAGES}
    with pytest.raises(openai.BadRequestError) as info:
        g.replay_client().chat.completions.create(**req)
    assert info.value.status_code == 400 and info.value.code == "unsupported_parameter"


def test_the_reference_solution_sends_exactly_the_recorded_requests() -> None:
    ref = solution("ex02")
    for send, args in (("support_reply", ()), ("headlines", ()), ("analyze", (course.load_financials(),))):
        client = g.replay_client()
        getattr(ref, send)(client, *args)
        served = client._labkit_transport.served  # type: ignore[attr-defined]
        assert [s.tier for s in served] == ["exact"], f"{send}(): {served}"


# --------------------------------------------------------------------------- every mutant, caught for its reason


@pytest.mark.parametrize("mutant", MUTANTS, ids=[f"{m['check']}: {m['why'][:50]}" for m in MUTANTS])
def test_every_mutant_is_caught_for_its_reason(mutant: dict[str, Any], tmp_path: Path) -> None:
    source = (ROOT / "solutions" / "ex02_parameter_tuning.py").read_text()
    for find, replace in mutant["replace"]:
        assert find in source, f"{find!r} no longer occurs in the solution"
        source = source.replace(find, replace, 1)
    (tmp_path / "ex02_parameter_tuning.py").write_text(source)
    result = next(r for r in run_checks("ex02", tmp_path).results if r.id == f"ex02.{mutant['check']}")
    assert result.status == "fail", (mutant["why"], result.status, result.detail)
    assert mutant["expect"] in result.detail, (mutant["why"], result.detail)
