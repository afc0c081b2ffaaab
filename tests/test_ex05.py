"""Exercise 05 beyond the checks: data, recordings in both APIs, the contract, limiter, virtual clock, server, wrong submissions."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest

from labkit.catalog import get_model
from labkit.checks import ex05 as g
from labkit.checks import get_exercise, load_learner_module, run_checks
from labkit.course import ex05 as course
from labkit.course.ex05 import Category, Sentiment, Urgency, email_generator, email_text, request_for
from labkit.faults import Latency
from labkit.lint import lint_request
from labkit.paths import exercises_dir, solutions_dir
from labkit.ratelimit import Crash, RateLimiter, TokenBucket, lab_client, run_virtual, theoretical_rps, user_text, window_peak
from labkit.replay import load_cassette, resolve_cassette
from labkit.serve import serving
from labkit.tokens import count_tokens

ROOT = Path(__file__).resolve().parent.parent
WRONG = tomllib.loads((ROOT / "tests" / "mutants" / "ex05.toml").read_text())["wrong"]


@pytest.fixture(scope="module")
def sol():
    return load_learner_module(solutions_dir() / "ex05_batch.py")


def chat_answers() -> dict[str, dict[str, str]]:
    """Email id -> recorded classification, over both cassettes (every email has a chat recording)."""
    by_text = {email_text(e): e["id"] for e in course.load_emails()}
    out = {}
    for name in ("ex05", "ex05_inbox"):
        for inter in load_cassette(resolve_cassette(name)).interactions:
            body = inter.body or {}
            if inter.status == 200 and inter.path == "/v1/chat/completions" and "response_format" in body:
                email_id = by_text.get(user_text(body) or "")
                if email_id:
                    out[email_id] = json.loads(json.loads(inter.content)["choices"][0]["message"]["content"])
    return out


# --------------------------------------------------------------------------- data and recordings


def test_data_file_is_what_the_seeded_generator_makes() -> None:
    gen = email_generator()
    assert gen.data_lines(gen.generate()) == (ROOT / "data" / course.EMAILS_FILE).read_text(encoding="utf-8")


def test_data_has_labels_and_every_hard_case() -> None:
    rows = course.load_emails()
    assert len(rows) == 1000 and len({r["id"] for r in rows}) == 1000
    assert len({email_text(r) for r in rows}) == 1000, "two emails alike would make the same request twice"
    for r in rows:
        assert r["label"]["sentiment"] in set(Sentiment)
        assert r["label"]["urgency"] in set(Urgency)
        assert r["label"]["category"] in set(Category)
    kinds = Counter(r["hard_case"] for r in rows)
    assert {"empty", "long", "non-english", "injection"} <= set(kinds)
    assert any(r["body"] == "" for r in rows) and max(len(r["body"]) for r in rows) > 8000
    assert Counter(r["label"]["category"] for r in rows).most_common()[-1][1] > 100


def test_prompt_token_table_is_what_tiktoken_counts_today() -> None:
    shipped = json.loads((ROOT / "data" / course.PROMPT_TOKENS_FILE).read_text(encoding="utf-8"))
    assert shipped == course.prompt_token_table(), "stale: run python -c 'from labkit.course.ex05 import write_prompt_tokens; write_prompt_tokens()'"
    unknown = {**course.load_emails()[0], "subject": "a subject no table knows"}
    assert course.tokens_for(unknown) == count_tokens(course.build_messages(unknown), course.MODEL) + course.MAX_OUTPUT


def test_recordings_disagree_honestly_and_are_marked_authored() -> None:
    answers = chat_answers()
    assert len(answers) == 1000
    wrong = sum(any(answers[r["id"]][f] != r["label"][f] for f in r["label"]) for r in course.load_emails())
    assert 50 <= wrong <= 80, f"{wrong} disagreements: the brief asks for about 5-8%"
    labels = []
    for name in ("ex05", "ex05_inbox"):
        data = json.loads((ROOT / "cassettes" / f"{name}.json").read_text())
        assert data["metadata"]["labkit"]["provenance"] == "authored"
        labels += [i["labkit"]["label"] for i in data["interactions"] if "Responses API" not in i["labkit"]["label"]]
    assert sum("authored disagreement" in label for label in labels) == wrong


def test_every_email_the_checks_send_is_recorded_in_both_apis() -> None:
    cassette = load_cassette(resolve_cassette("ex05"))
    recorded = {(i.path, user_text(i.body)) for i in cassette.interactions if i.status == 200}
    batches = [g.full_batch(), g.resume_batch(), g.crash_batch(), [e for e, _ in g.faults_batch()], g.pool()[30:56]]
    for email in (e for batch in batches for e in batch):
        for path in ("/v1/chat/completions", "/v1/responses"):
            assert (path, email_text(email)) in recorded, (email["id"], path)


def test_the_course_requests_lint_clean_at_the_chosen_effort() -> None:
    email = course.load_emails()[0]
    for request in (request_for(email), course.sampling_request(email), course.sampling_request(email, json_mode=True),
                    *(course.effort_request(email, effort) for effort in course.EFFORT_COMPARISON)):
        wire = {k: v for k, v in request.items() if k != "response_format" or isinstance(v, dict)}
        assert not [f for f in lint_request(**wire) if f.severity == "error"], request
    assert course.EFFORT in get_model(course.MODEL).efforts
    codes = {f.code for f in lint_request(**course.lesson_request(email)) if f.severity == "error"}
    assert {"sampling-unsupported", "max-tokens-unsupported"} <= codes


def test_the_contract_classes_are_disjoint_and_the_sdk_agrees() -> None:
    c = course.CONTRACT
    assert not set(c.retry_statuses) & set(c.final_statuses)
    assert all(s < 500 for s in c.final_statuses) and 499 in c.final_statuses
    assert {408, 409, 429} <= set(c.retry_statuses) and {500, 502, 503} <= set(c.retry_statuses)
    client = openai.OpenAI(api_key="x")
    for status in (*c.retry_statuses, *c.final_statuses):  # the SDK's own retry rule says the same
        import httpx2

        response = httpx2.Response(status, request=httpx2.Request("POST", "https://api.openai.com/v1/chat/completions"))
        assert client._should_retry(response) == (status in c.retry_statuses), status


def test_starter_and_solution_send_the_lessons_recorded_requests(sol) -> None:
    starter = load_learner_module(exercises_dir() / "ex05_batch.py")
    for name in ("request_for", "responses_request_for", "Classification", "Queue", "load_emails", "tokens_for", "CONTRACT"):
        assert getattr(starter, name) is getattr(sol, name) is getattr(course, name), f"{name} is the lesson's, given"
    client = lab_client("ex05")
    for email in g.pool():
        run_virtual(sol.classify(client, dict(email)))
    assert {s.tier for s in client._labkit_transport.then.served} == {"exact"}


def test_the_responses_api_gets_the_same_answer_and_record_ok_reads_both(sol) -> None:
    client = lab_client("ex05")
    email = course.demo_email(course.load_emails())

    async def both() -> tuple[Any, Any]:
        return (await client.chat.completions.parse(**request_for(email)),
                await client.responses.parse(**course.responses_request_for(email)))

    chat, resp = run_virtual(both())
    a, b = sol.record_ok(email, chat, 1), sol.record_ok(email, resp, 1)
    assert {k: a[k] for k in course.FIELDS} == {k: b[k] for k in course.FIELDS}
    assert a["prompt_tokens"] > 0 and b["prompt_tokens"] > 0 and a["model"] == b["model"]


def test_the_cut_off_answer_raises_in_both_apis() -> None:
    client = lab_client("ex05")
    with pytest.raises(openai.LengthFinishReasonError):
        run_virtual(client.chat.completions.parse(**request_for(course.TRUNCATED_EMAIL)))
    with pytest.raises(ValueError):  # pydantic's ValidationError: the JSON stops mid-string
        run_virtual(client.responses.parse(**course.responses_request_for(course.TRUNCATED_EMAIL)))
    cut = next(i for i in load_cassette(resolve_cassette("ex05")).interactions if i.label.startswith("em-cutoff through"))
    answer = json.loads(cut.content)
    assert answer["status"] == "incomplete" and answer["incomplete_details"] == {"reason": "max_output_tokens"}


def test_higher_efforts_are_recorded_with_their_reasoning_and_cost_more() -> None:
    from labkit.costs import cost

    client = lab_client("ex05")
    email = course.demo_email(course.load_emails())
    usages = [run_virtual(client.chat.completions.parse(**course.effort_request(email, e))).usage
              for e in course.EFFORT_COMPARISON]
    reasoning = [u.completion_tokens_details.reasoning_tokens for u in usages]
    assert reasoning[0] == 0 < reasoning[1] < reasoning[2]
    prices = [cost(u, course.MODEL).total_usd for u in usages]
    assert prices == sorted(prices) and prices[2] > 2 * prices[0]


def test_batch_is_half_price_and_flex_exists_only_where_offered() -> None:
    from labkit.costs import estimate
    from labkit.course.models import FLAGSHIP, REASONING

    full, half = estimate(400, 50, course.MODEL), estimate(400, 50, course.MODEL, tier="batch")
    assert half.total_usd == pytest.approx(full.total_usd / 2)
    assert get_model(course.MODEL).flex and not get_model(REASONING).flex and not get_model(FLAGSHIP).flex


# --------------------------------------------------------------------------- checks' own helpers


def test_finished_ids_cases_and_generated_files_agree_with_the_reference(sol, tmp_path: Path) -> None:
    for name, text, want in g._results_file_cases():
        path = tmp_path / "r.jsonl"
        path.write_text(text, encoding="utf-8")
        assert sol.finished_ids(path) == want, name
    assert g._property_finished_ids(sol.finished_ids)[0]
    shown = g._property_finished_ids(lambda p: {line for line in Path(p).read_text().splitlines()})[1]
    assert "smallest failing file" in shown


def test_the_contract_model_of_the_faults_scenario_is_what_the_reference_does(sol) -> None:
    from labkit.checks import differential as diff

    assert diff.first_difference(diff.observe(sol, g.faults_scenario), json.loads(json.dumps(g.expected_faults()))) is None
    statuses = {s.steps[0].split()[0] for _, s in g.faults_batch() if s is not None}
    named = {str(c) for c in (*course.CONTRACT.retry_statuses, *course.CONTRACT.final_statuses)} | set(course.CONTRACT.retry_faults)
    assert named <= statuses | {"503", "502", "500"}, "every status class of the contract is scripted"


def test_earlier_results_hold_every_case_the_resume_check_names() -> None:
    text = g.earlier_results()
    lines = text.split("\n")
    assert not text.endswith("\n") and "" in lines, "a torn last line and a blank line"
    assert sum(not g._is_json(line) for line in lines if line) == 2, "one torn line in the middle, one at the end"
    assert "\u2028" in text and '"status": "error"' in text


def test_crash_is_caught_in_a_task_group() -> None:
    group = BaseExceptionGroup("tasks", [Crash("x")])
    assert g.crashed(group) and g.crashed(Crash("x")) and not g.crashed(ValueError())
    assert not g._must_propagate(group) and g._must_propagate(BaseExceptionGroup("t", [KeyboardInterrupt()]))


def test_user_text_reads_both_apis() -> None:
    email = course.load_emails()[3]
    chat = json.loads(json.dumps({"messages": course.build_messages(email)}))
    responses = {"input": [{"role": "developer", "content": "x"}, {"role": "user", "content": [{"type": "input_text", "text": email_text(email)}]}]}
    assert user_text(chat) == user_text(responses) == email_text(email) == user_text({"input": email_text(email)})


# --------------------------------------------------------------------------- realistic wrong submissions


def _materialize(entry: dict[str, Any], tmp_path: Path) -> Path:
    source = (solutions_dir() / "ex05_batch.py").read_text()
    for find, replace in entry["replace"]:
        assert find in source, f"wrong submission {entry['name']}: {find!r} no longer occurs in the solution"
        source = source.replace(find, replace, 1)
    out = tmp_path / f"{get_exercise('ex05').file}.py"
    out.write_text(source)
    return out


@pytest.mark.parametrize("entry", WRONG, ids=[w["name"] for w in WRONG])
def test_each_wrong_submission_is_caught_by_its_check_for_its_reason(entry: dict[str, Any], tmp_path: Path) -> None:
    report = run_checks("ex05", _materialize(entry, tmp_path))
    result = next(r for r in report.results if r.id == f"ex05.{entry['check']}")
    assert result.status == "fail", (entry["why"], result.detail)
    assert entry["detail"] in result.detail, (entry["why"], result.detail)


# --------------------------------------------------------------------------- limiter and virtual clock


def test_virtual_loop_jumps_over_sleeps() -> None:
    async def nap() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(asyncio.sleep(d) for d in (5.0, 60.0, 0.5)))
        return loop.time() - start

    t = time.perf_counter()
    assert run_virtual(nap()) == pytest.approx(60.0)
    assert time.perf_counter() - t < 1.0


def test_work_in_a_thread_takes_no_virtual_time_and_is_not_overtaken_by_timers() -> None:
    async def race() -> tuple[float, float]:
        loop = asyncio.get_running_loop()

        async def after(delay: float) -> float:
            await asyncio.sleep(delay)
            return loop.time()

        async def in_thread() -> float:
            await asyncio.to_thread(time.sleep, 0.05)
            return loop.time()

        timer, thread = await asyncio.gather(after(5.0), in_thread())
        return timer, thread

    assert run_virtual(race()) == (5.0, 0.0)
    assert lab_client("ex05")._platform is not None, "detected up front, not in a worker thread the clock cannot see"


def test_rate_limiter_paces_requests_and_tokens() -> None:
    async def burst(limiter: RateLimiter, n: int, tokens: int) -> list[float]:
        loop = asyncio.get_running_loop()
        times = []

        async def one() -> None:
            await limiter.acquire(tokens)
            times.append(loop.time())

        await asyncio.gather(*(one() for _ in range(n)))
        return times

    times = run_virtual(burst(RateLimiter(rpm=600), 50, 0))  # 10/s, burst of 1
    assert max(times) - min(times) == pytest.approx(4.9)
    assert window_peak(times, 1.0) <= 11
    times = run_virtual(burst(RateLimiter(rpm=None, tpm=60_000), 20, 500))  # 1,000 tokens/s
    assert max(times) - min(times) == pytest.approx(9.5, abs=0.01)


def test_an_oversized_request_goes_through_and_leaves_debt() -> None:
    bucket = TokenBucket(rate=100, capacity=10)
    assert bucket.wait_time(500, 0.0) == 0.0  # full bucket: let it through
    bucket.take(500, 0.0)
    assert bucket.wait_time(1, 0.0) == pytest.approx(4.91)


def test_window_peak_and_theoretical_limit() -> None:
    assert window_peak([0, 0.1, 0.2, 1.5, 1.6], 1.0) == 3
    assert window_peak([0, 0.5, 1.0], 1.0, [5, 1, 2]) == 6
    assert theoretical_rps(16, 0.05) == 320 and theoretical_rps(16, 0.05, 6_000) == 100


def test_lab_client_scripts_faults_per_item_crashes_and_looks_at_the_disk_first(sol, tmp_path: Path) -> None:
    first, second = g.pool()[0], g.pool()[1]
    seen: list[str] = []
    client = lab_client("ex05", per_item={email_text(second): ["400"]}, crash_after=2, on_crash=lambda: seen.append("disk"))

    async def go() -> list[str]:
        out = []
        for email in (first, second, first):
            try:
                await sol.classify(client, dict(email))
                out.append("ok")
            except openai.BadRequestError:
                out.append("400")
        return out

    with pytest.raises(Crash):
        run_virtual(go())
    assert [a.outcome for a in client._labkit_transport.attempts] == ["ok", "400", "ok"] and seen == ["disk"]


def test_the_simulator_answers_another_valid_wording_and_rejects_what_the_api_rejects() -> None:
    client = lab_client("ex05", simulate=True)
    email = g.pool()[2]
    low = {k: v for k, v in request_for(email).items() if k != "temperature"} | {"reasoning_effort": "low"}
    got = run_virtual(client.chat.completions.parse(**low))
    assert got.choices[0].message.parsed.urgency == g.answers()[email_text(email)]["urgency"]
    assert client._labkit_transport.then.served[-1].tier == "simulated"
    with pytest.raises(openai.BadRequestError):  # temperature at effort low: the API's 400
        run_virtual(client.chat.completions.parse(**(low | {"temperature": 0})))


def test_solution_batch_on_the_virtual_clock_reaches_the_limit(sol, tmp_path: Path) -> None:
    client = lab_client(["ex05", "ex05_inbox"], latency=Latency(base=0.05, jitter=0.01))

    async def go() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await sol.process_batch(client, course.load_emails()[:200], tmp_path / "r.jsonl", concurrency=10, rpm=60_000,
                                tpm=50_000_000, progress=False)
        return loop.time() - start

    elapsed = run_virtual(go())
    assert 200 / elapsed >= 0.9 * theoretical_rps(10, 0.05)
    assert client._labkit_transport.max_in_flight == 10
    assert len(sol.finished_ids(tmp_path / "r.jsonl")) == 200


# --------------------------------------------------------------------------- the local server


def test_server_serves_recordings_with_latency_over_real_http() -> None:
    with serving(["ex05", "ex05_inbox"], latency=Latency(base=0.05)) as server:
        client = openai.OpenAI(api_key="test-no-key", base_url=server.url, max_retries=0)
        email = course.load_emails()[500]
        t = time.perf_counter()
        got = client.chat.completions.parse(**request_for(email)).choices[0].message.parsed
        assert time.perf_counter() - t >= 0.05
        assert got.urgency == chat_answers()[email["id"]]["urgency"]
        with pytest.raises(openai.BadRequestError, match="no recording"):
            client.chat.completions.create(model=course.MODEL, messages=[{"role": "user", "content": "not recorded"}])
        assert server.stats.answered == 1 and server.stats.misses == 1


def test_server_keeps_up_with_concurrency_and_enforces_rpm() -> None:
    with serving("ex05", latency=Latency(base=0.02), rpm=600) as server:  # 10/s, 1 s burst
        client = openai.AsyncOpenAI(api_key="test-no-key", base_url=server.url, max_retries=0)

        async def flood() -> list[str]:
            async def one(e: dict) -> str:
                try:
                    await client.chat.completions.parse(**request_for(e))
                    return "ok"
                except openai.RateLimitError as err:
                    assert float(err.response.headers["retry-after-ms"]) > 0
                    return "429"

            return await asyncio.gather(*(one(dict(e)) for e in g.pool()[:30]))

        got = Counter(asyncio.run(flood()))
        assert got == {"ok": 10, "429": 20}
        assert server.stats.peak_in_flight == 10
