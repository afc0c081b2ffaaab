"""Exercise 10: the Batch API's state machine, file uploads in replay, derived logprobs and caching, the course data, the checks' model."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

import labkit
from labkit.authoring import Author, cached_prefix, prompt_token_ids, token_logprobs, value_spans
from labkit.checks import ex10 as checks
from labkit.checks import load_learner_module
from labkit.clock import Clock
from labkit.course import ex05
from labkit.course import ex10 as course
from labkit.endpoints.batches import (
    FINALIZE_SECONDS,
    SECONDS_PER_REQUEST,
    VALIDATE_SECONDS,
    BatchAPI,
    BatchStore,
    renderer_answer,
    validate_lines,
)
from labkit.replay import ReplayMiss, multipart_form

ROOT = Path(__file__).resolve().parent.parent
sol = load_learner_module(ROOT / "solutions" / "ex10_production.py")
START = 1_800_000_000.0


def lines_for(products: list[course.Product]) -> bytes:
    return "".join(json.dumps({"custom_id": p.sku, "method": "POST", "url": "/v1/responses", "body": course.content_body(p)}) + "\n"
                   for p in products).encode()


def store(**kw: Any) -> tuple[BatchStore, openai.OpenAI, Clock]:
    clock = Clock(now=START)
    made = BatchStore(clock, renderer_answer(lambda cid, body: f"Copy for {cid}."), **kw)
    return made, BatchAPI(made).client(), clock


# --------------------------------------------------------------------------- the Batch API


def test_a_batch_runs_through_its_statuses_with_derived_counts_and_times() -> None:
    products = list(course.PRODUCTS[:4])
    _store, client, clock = store()
    data = lines_for(products)
    uploaded = client.files.create(file=("in.jsonl", data), purpose="batch")
    assert (uploaded.bytes, uploaded.purpose, uploaded.filename) == (len(data), "batch", "in.jsonl")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h")
    assert batch.status == "validating" and batch.expires_at == batch.created_at + 86_400
    seen = []
    for _ in range(8):
        clock.sleep(30)
        b = client.batches.retrieve(batch.id)
        seen.append((int(clock.now - START), b.status, b.request_counts.completed))
    done = VALIDATE_SECONDS + 4 * SECONDS_PER_REQUEST
    for at, status, completed in seen:
        want = ("validating" if at < VALIDATE_SECONDS else "in_progress" if at < done else
                "finalizing" if at < done + FINALIZE_SECONDS else "completed")
        assert status == want, (at, status)
        if status == "in_progress":
            assert completed == (at - VALIDATE_SECONDS) // SECONDS_PER_REQUEST
    final = client.batches.retrieve(batch.id)
    assert final.completed_at == final.created_at + done + FINALIZE_SECONDS and final.finalizing_at == final.created_at + done
    rows = [json.loads(line) for line in client.files.content(final.output_file_id).text.splitlines()]
    assert sorted(r["custom_id"] for r in rows) == sorted(p.sku for p in products)
    assert [r["custom_id"] for r in rows] != [p.sku for p in products], "the output should not come back in input order"
    assert final.usage is not None
    assert final.usage.output_tokens == sum(r["response"]["body"]["usage"]["output_tokens"] for r in rows)
    assert final.error_file_id is None and final.request_counts.failed == 0


@pytest.mark.parametrize(("content", "code"), [
    (b"not json\n", "invalid_json_line"),
    (b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}\n', "mismatched_endpoint"),
    (b'{"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": {"model": "m"}}\n' * 2, "duplicate_custom_id"),
    (b'{"custom_id": "a", "method": "POST", "url": "/v1/responses"}\n', "missing_required_parameter"),
    (b'{"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": {"model": "m"}}\n'
     b'{"custom_id": "b", "method": "POST", "url": "/v1/responses", "body": {"model": "n"}}\n', "mismatched_model"),
    (b"\n", "empty_file"),
])
def test_a_file_that_does_not_validate_fails_the_batch(content: bytes, code: str) -> None:
    assert code in [e["code"] for e in validate_lines(content, "/v1/responses")[1]]
    _store, client, clock = store()
    uploaded = client.files.create(file=("in.jsonl", content), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h")
    clock.sleep(VALIDATE_SECONDS)
    failed = client.batches.retrieve(batch.id)
    assert failed.status == "failed" and failed.errors and failed.errors.data
    assert failed.errors.data[0].code == code and failed.output_file_id is None


def test_a_slow_batch_expires_and_lists_the_requests_it_never_ran() -> None:
    _store, client, clock = store(seconds_per_request=50_000)
    uploaded = client.files.create(file=("in.jsonl", lines_for(list(course.PRODUCTS[:3]))), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h")
    clock.sleep(86_400)
    expired = client.batches.retrieve(batch.id)
    assert expired.status == "expired" and expired.expired_at == expired.expires_at
    assert expired.request_counts.completed == 1
    errors = [json.loads(line) for line in client.files.content(expired.error_file_id).text.splitlines()]
    assert {e["error"]["code"] for e in errors} == {"batch_expired"} and len(errors) == 2


def test_cancelling_stops_the_requests_still_waiting() -> None:
    _store, client, clock = store()
    uploaded = client.files.create(file=("in.jsonl", lines_for(list(course.PRODUCTS[:6]))), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h")
    clock.sleep(VALIDATE_SECONDS + 2 * SECONDS_PER_REQUEST)
    assert client.batches.cancel(batch.id).status == "cancelling"
    clock.sleep(FINALIZE_SECONDS)
    done = client.batches.retrieve(batch.id)
    assert done.status == "cancelled" and done.request_counts.completed == 2
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)


def test_the_files_and_batch_apis_answer_errors_as_the_api_does() -> None:
    _store, client, _clock = store()
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("in.jsonl", b"{}"), purpose="batch-ish")  # type: ignore[arg-type]
    other = client.files.create(file=("in.jsonl", b"{}\n"), purpose="user_data")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.batches.create(input_file_id=other.id, endpoint="/v1/responses", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_0000")
    with pytest.raises(openai.NotFoundError):
        client.files.content("file-0000")


def test_a_batch_line_the_api_would_reject_goes_to_the_error_file() -> None:
    _store, client, clock = store()
    bad = {**course.content_body(course.PRODUCTS[0]), "temperature": 0.7}  # effort low on the everyday model: 400
    line = json.dumps({"custom_id": "bad", "method": "POST", "url": "/v1/responses", "body": bad}) + "\n"
    uploaded = client.files.create(file=("in.jsonl", line.encode()), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h")
    clock.sleep(3_600)
    done = client.batches.retrieve(batch.id)
    row = json.loads(client.files.content(done.error_file_id).text)
    assert row["response"]["status_code"] == 400 and done.request_counts.failed == 1


# --------------------------------------------------------------------------- uploads in replay


def test_multipart_uploads_are_matched_by_content_not_by_boundary() -> None:
    seen: list[bytes] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.read())
        return httpx2.Response(200, json={"id": "file-1", "object": "file", "bytes": 1, "created_at": 1, "filename": "x",
                                          "purpose": "batch", "status": "processed"})

    client = openai.OpenAI(api_key="x", http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    for _ in range(2):
        client.files.create(file=("a.jsonl", "{\"k\": \"é\"}\n".encode()), purpose="batch")
    assert seen[0] != seen[1]  # random boundaries
    assert multipart_form(seen[0]) == multipart_form(seen[1]) == {
        "purpose": "batch", "file": {"filename": "a.jsonl", "content": "{\"k\": \"é\"}\n"}}
    assert multipart_form(b'{"model": "x"}') is None


def test_the_recorded_upload_answers_only_the_same_file(tmp_path: Path) -> None:
    client = labkit.client("ex10")
    path = sol.write_batch_file(list(course.PRODUCTS), tmp_path / "content-1.jsonl")
    assert sol.submit_batch(client, path).status == "validating"
    other = sol.write_batch_file(list(course.PRODUCTS[:3]), tmp_path / "content-1.jsonl")
    with pytest.raises(ReplayMiss, match="file"):
        client.files.create(file=other.open("rb"), purpose="batch")


def test_authored_uploads_get_a_boundary_derived_from_their_content() -> None:
    a = Author("t")
    a.state["batch_answer"] = renderer_answer(lambda cid, body: "x")
    for _ in range(2):
        a.each(lambda c: c.files.create(file=("f.jsonl", b"{}\n"), purpose="batch"))
    first, second = (item["request"] for item in a.items)
    assert first["body"] == second["body"] and first["headers"]["content-type"] == second["headers"]["content-type"]
    assert "boundary=labkit" in first["headers"]["content-type"][0]


# --------------------------------------------------------------------------- derived logprobs and caching


def test_token_logprobs_spell_the_answer_and_carry_each_labels_probability() -> None:
    text = json.dumps({"sentiment": "negative", "urgency": "high", "category": "billing", "summary": "Zoë 🙂 was charged twice"})
    sure = {"sentiment": 0.97, "urgency": 0.55, "category": 0.999}
    schema = ex05.Classification.model_json_schema()
    tokens = token_logprobs(text, "gpt-6-luna", "seed", sure, top=3, schema=schema)
    assert b"".join(bytes(t["bytes"]) for t in tokens) == text.encode()
    spans = value_spans(text, list(sure))
    for name, (start, stop) in spans.items():
        at, total = 0, 0.0
        for t in tokens:
            if at < stop and at + len(t["bytes"]) > start:
                total += t["logprob"]
            at += len(t["bytes"])
        assert math.isclose(math.exp(total), sure[name], rel_tol=1e-3)
    urgency = next(t for t in tokens if t["logprob"] == pytest.approx(math.log(0.55)))
    assert len(urgency["top_logprobs"]) == 3 and urgency["top_logprobs"][0]["token"] == urgency["token"]
    assert {a["token"] for a in urgency["top_logprobs"][1:]} <= {"low", "medium", "critical", "crit", "med"}


def test_logprobs_are_rendered_only_when_asked_in_either_api() -> None:
    email = course.routing_emails()[6]
    client = labkit.client("ex10_routing")
    plain = client.chat.completions.parse(**{**ex05.request_for(email), "model": course.LARGE_MODEL})
    asked = client.chat.completions.parse(**{**ex05.request_for(email), "logprobs": True})
    assert plain.choices[0].logprobs is None and asked.choices[0].logprobs is not None
    model = checks.KeyedModel(lambda body: {"reply": plain.choices[0].message.content, "confidence": {"urgency": 0.5}})
    response = model.client().responses.parse(**ex05.responses_request_for(email), include=["message.output_text.logprobs"])
    part = response.output[-1].content[0]
    assert part.logprobs and math.isclose(min(math.exp(t.logprob) for t in part.logprobs), 0.5, rel_tol=1e-6)


def test_cache_auto_reads_the_prefix_shared_with_an_earlier_prompt() -> None:
    requests = [sol.personal_request(c) for c in course.CUSTOMERS[:3]]
    ids = [prompt_token_ids(r) for r in requests]
    assert cached_prefix(ids[0], []) == 0
    shared = cached_prefix(ids[1], ids[:1])
    assert shared >= 1_024 and shared % 128 == 0 and shared < len(ids[1])
    reversed_layout = {**requests[1], "messages": list(reversed(requests[1]["messages"]))}
    assert cached_prefix(prompt_token_ids(reversed_layout), ids[:1]) == 0


def test_the_personalization_recordings_write_then_read_the_cache() -> None:
    client = labkit.client("ex10")
    usages = [sol.personalize(client, c).usage for c in course.CUSTOMERS]
    assert usages[0].prompt_tokens_details.cached_tokens == 0 and usages[0].prompt_tokens_details.cache_write_tokens >= 1_024
    assert all(u.prompt_tokens_details.cached_tokens >= 1_024 and u.prompt_tokens_details.cache_write_tokens == 0 for u in usages[1:])


# --------------------------------------------------------------------------- the course's data and rules


def test_claims_and_sensitive_terms_follow_the_contract() -> None:
    assert course.claims(course.KB["refunds"].text) == {"refund", "30 days", "5-10 business days"}
    assert course.claims("within 5–10  Business Days, $80 and 10 %") == {"5-10 business days", "$80", "10%"}
    assert course.claims("your credit card was updated") == set()
    assert course.sensitive_terms_in("Ich verlange eine RÜCKERSTATTUNG") == ["rückerstattung"]
    assert course.sensitive_terms_in("we issued an invoice") == []


def test_every_labelled_lead_value_is_stated_by_its_text() -> None:
    for case in course.LEAD_CASES:
        for lead in case.leads:
            assert set(lead) == set(course.LEAD_FIELDS)
            for name, value in lead.items():
                assert value is None or course.appears_in(value, case.text, name), (case.id, name, value)
    assert course.appears_in("+49 30 90182077", course.LEAD_CASES[2].text, "phone")
    assert not course.appears_in("+49 30 90182078", course.LEAD_CASES[2].text, "phone")


def test_facts_allowed_to_a_customer_are_their_record_and_the_brief_only() -> None:
    ana, ben = course.CUSTOMER["cus-ana"], course.CUSTOMER["cus-ben"]
    allowed = course.allowed_facts(ana)
    assert {"ana", "lumen analytics", "20", "2027-03-01", "business plan", "timeline view"} <= allowed
    assert not allowed & {"ben", "okafor & sons builders", "team plan", "8"}
    assert course.facts(f"Hi Ana, like {ben.company}, since 2019") - allowed == {"okafor & sons builders", "2019"}


def test_the_shared_instructions_pass_the_caching_threshold() -> None:
    shared = sol.personal_request(course.CUSTOMERS[0])["messages"][0]
    assert labkit.count_tokens([shared], course.PERSONAL_MODEL) > course.CONTRACT.cache_min_tokens


def test_the_notebooks_tickets_go_where_the_contract_says() -> None:
    client = labkit.client("ex10")
    desk = course.SupportDesk(clock=Clock())
    routes = {t.id: sol.handle_ticket(client, desk, t, course.CUSTOMER[t.customer_id]) for t in course.TICKETS}
    assert [t for t, r in routes.items() if r == "sent"] == ["T-1001", "T-1002", "T-1006"]
    assert [t for t, _ in desk.queue()] == ["T-1003", "T-1004", "T-1005", "T-1007"]


def test_sent_replies_reach_a_real_smtp_server_on_loopback() -> None:
    import smtplib

    from labkit.web import SmtpSink

    with SmtpSink() as sink:
        def deliver(message: Any) -> None:
            with smtplib.SMTP(sink.host, sink.port, timeout=10) as smtp:
                smtp.send_message(message)

        desk = course.SupportDesk(clock=Clock(), deliver=deliver)
        ticket = course.TICKETS[0]
        sol.handle_ticket(labkit.client("ex10"), desk, ticket, course.CUSTOMER[ticket.customer_id])
        [message] = sink.wait_for(1)
    assert message["To"] == course.CUSTOMER[ticket.customer_id].email and "3 business days" in message.get_content()


def test_the_notebooks_live_cost_prices_batch_output_at_batch_prices(tmp_path: Path) -> None:
    from labkit.notebook import _batch_output_cost

    outputs = [i for i in checks.load_cassette(checks.resolve_cassette("ex10")).interactions if i.path.endswith("/content")]
    priced = sum(_batch_output_cost(i.content.decode()) for i in outputs)
    run = sol.run_content_batch(labkit.client("ex10"), list(course.PRODUCTS), tmp_path, sleep=Clock().sleep)
    assert len(run.usages) == 12 and math.isclose(priced, sol.batch_cost(run)[0], rel_tol=1e-9)
    n, _usd = labkit.notebook.live_cost("ex10")
    assert n == len(checks.load_cassette(checks.resolve_cassette("ex10")).interactions)


# --------------------------------------------------------------------------- the checks' model and recordings


def test_the_keyed_model_applies_the_apis_rules_before_answering() -> None:
    model = checks.KeyedModel(checks.by_key([("hello", {"reply": "hi"})]))
    client = model.client()
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.responses.create(model=course.SUPPORT_MODEL, input="hello", reasoning={"effort": "low"}, temperature=0.3)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=course.SUPPORT_MODEL, input="something else")
    assert model.sent[-1].unscripted
    assert client.responses.create(model=course.SUPPORT_MODEL, input="hello").output_text == "hi"


def test_the_routing_recordings_cover_both_models_and_keep_lesson_05s_answers() -> None:
    sys.path.insert(0, str(ROOT / "cassettes" / "sources"))
    try:
        source = importlib.import_module("ex05")
        records = {r["id"]: r for r in source._emails()}
        small = {i: reply for i, (reply, _note) in source.authored(list(records.values())).items()}
    finally:
        sys.path.remove(str(ROOT / "cassettes" / "sources"))
    recorded = checks.recorded_routing()
    for email in course.routing_emails():
        text = ex05.email_text(email)
        assert recorded[(course.SMALL_MODEL, text)]["reply"] == small[email["id"]]
        assert set(recorded[(course.SMALL_MODEL, text)]["confidence"]) == set(ex05.FIELDS)
        assert (course.LARGE_MODEL, text) in recorded
    assert {e["id"] for e in course.routing_emails() if e["hard_case"]} <= {e["id"] for e in checks.metric_emails()}
