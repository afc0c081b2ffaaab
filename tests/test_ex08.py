"""Exercise 08 beyond the checks: streams in time, the recordings, and the app on real servers.

The checks drive the app in-process on a virtual clock; here it runs on uvicorn at 127.0.0.1 with a
real HTTP client, a real WebSocket client and a real SMTP server (aiosmtpd), and the recordings
play at a fifth of their real pace. The browser tests are in tests/test_ex08_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import openai
import pytest

from labkit.authoring import Author, Pending, Renderer
from labkit.checks import load_learner_module
from labkit.course import ex08 as course
from labkit.lint import lint_request
from labkit.paths import solutions_dir
from labkit.ratelimit import VirtualTimeLoop
from labkit.replay import ReplayTransport, load_cassette, resolve_cassette
from labkit.streams import LoopPacer, PacedStream, StreamLedger, paced_pieces, split_events, stream_offsets
from labkit.web import (
    AsgiClient,
    MemoryMailer,
    RequestLog,
    SmtpMailer,
    SmtpSink,
    parse_sse,
    percentile,
    run_web_virtual,
    serve,
    sign_webhook,
    sse,
    upstream_app,
    upstream_client,
)

SCALE = 0.2  # the recordings' pace in the real-server tests: five times faster than the API


@pytest.fixture(scope="module")
def sol() -> ModuleType:
    return load_learner_module(solutions_dir() / "ex08_streaming_web.py")


def interactions() -> list[Any]:
    return load_cassette(resolve_cassette("ex08")).interactions


def by_label(prefix: str) -> Any:
    return next(i for i in interactions() if i.label.startswith(prefix))


# --------------------------------------------------------------------------- streams in time


def test_every_recorded_stream_has_one_offset_per_event_ending_at_its_processing_time() -> None:
    streams = [i for i in interactions() if i.content.lstrip().startswith((b"event:", b"data:"))]
    assert len(streams) >= 15
    for inter in streams:
        events = split_events(inter.content)
        assert len(inter.offsets) == len(events), inter.label
        assert list(inter.offsets) == sorted(inter.offsets), inter.label
        processing = int(dict(inter.headers)["openai-processing-ms"])
        if "fails midway" not in inter.label:
            assert inter.offsets[-1] == processing, inter.label


def test_offsets_follow_the_latency_model() -> None:
    fast = by_label("the question, Responses API, streamed")
    deep = by_label("relay: the deep answer")
    first_delta = [at for at, e in zip(fast.offsets, split_events(fast.content)) if b"output_text.delta" in e][0]
    assert 0.15 < first_delta / 1000 < 0.5  # a quarter of a second at effort none
    deep_first = [at for at, e in zip(deep.offsets, split_events(deep.content)) if b"output_text.delta" in e][0]
    assert deep_first / 1000 > 5  # the reasoning model thinks for seconds before its first visible token
    created = [at for at, e in zip(fast.offsets, split_events(fast.content)) if b"response.created" in e][0]
    assert created < 150  # lifecycle events come at once


def test_offsets_are_derived_and_reproducible() -> None:
    inter = by_label("the question, Responses API, streamed")
    again = stream_offsets(inter.content.decode(), model=course.MODEL, effort="none", reasoning_tokens=0,
                           total_ms=int(dict(inter.headers)["openai-processing-ms"]), seed="x")
    assert len(again) == len(inter.offsets) and again[-1] == inter.offsets[-1]


def test_untimed_streams_keep_no_offsets_so_older_cassettes_are_unchanged() -> None:
    a = Author("t")
    a.call(lambda c: c.responses.create(model=course.MODEL, input="hi", stream=True), "hello there")
    assert "offsets_ms" not in a.items[0]["labkit"]
    a.call(lambda c: c.responses.create(model=course.MODEL, input="hi again", stream=True), "hello there", timed=True)
    assert len(a.items[1]["labkit"]["offsets_ms"]) == len(split_events(a.items[1]["response"]["body"]["string"]))


def test_a_background_request_is_authored_queued() -> None:
    status, payload, _ = Renderer().render("/v1/responses", {"model": course.MODEL, "input": "x", "background": True}, b"{}",
                                           Pending(reply="done"), "seed")
    answer = json.loads(payload)
    assert (status, answer["status"], answer["background"], answer["output"]) == (200, "queued", True, [])


def test_paced_replay_costs_no_real_time_on_the_virtual_loop() -> None:
    async def go() -> tuple[float, float]:
        client = upstream_client("ex08", pace=LoopPacer())
        loop = asyncio.get_running_loop()
        start = loop.time()
        stream = await client.responses.create(**course.stream_request(course.RELAY_MESSAGES["deep"], True))
        async for _ in stream:
            pass
        return start, loop.time()

    wall = time.perf_counter()
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        start, end = runner.run(go())
    assert end - start == pytest.approx(by_label("relay: the deep answer").offsets[-1] / 1000, abs=0.01)
    assert time.perf_counter() - wall < 5  # eleven virtual seconds, a fraction of a real one


def test_ledger_tells_finished_from_closed_early() -> None:
    ledger = StreamLedger()
    done = PacedStream([(0.0, b"a"), (0.0, b"b")], LoopPacer(0), ledger)
    assert b"".join(done) == b"ab"
    cut = PacedStream([(0.0, b"a"), (0.0, b"b")], LoopPacer(0), ledger)
    next(iter(cut))
    cut.close()
    left = PacedStream([(0.0, b"a")], LoopPacer(0), ledger)
    assert (ledger.opened, ledger.finished, ledger.closed_early, ledger.in_flight, left.state) == (3, 1, 1, 1, "open")


def test_json_answers_arrive_after_their_processing_time() -> None:
    pieces = paced_pieces(b'{"a": 1}', (), 840.0)
    assert pieces == [(0.84, b'{"a": 1}')]


def test_failing_streams_end_as_the_api_ends_them() -> None:
    error = parse_sse(by_label("a Responses stream that fails midway with an error").content.decode())
    failed = parse_sse(by_label("a Responses stream that fails midway with a response.failed").content.decode())
    chat = parse_sse(by_label("a Chat Completions stream that fails midway").content.decode())
    assert error[-1][0] == "error" and error[-1][1]["code"] == "server_error"
    assert failed[-1][0] == "response.failed" and failed[-1][1]["response"]["status"] == "failed"
    assert "error" in chat[-1][1] and not any(name == "response.completed" for name, _ in error + failed)


def test_the_course_requests_lint_clean_and_the_lessons_is_rejected() -> None:
    requests = [course.answer_request(course.QUESTION), course.answer_request(course.QUESTION, "chat"),
                course.stream_request("x"), course.stream_request("x", True), course.onboarding_request(course.CUSTOMERS[0]),
                course.background_request("x"), course.chat_turn_request("x", conversation="conv_1")]
    for request in requests:
        errors = [f for f in lint_request(**{k: v for k, v in request.items() if k not in ("stream", "background", "conversation")})
                  if f.severity == "error"]
        assert not errors, (request["model"], errors)
    lesson = course.lesson_headline_request(course.PRODUCTS[0])
    assert any(f.severity == "error" for f in lint_request(**lesson))
    assert by_label("the lesson's Example 2 request").status == 400


# --------------------------------------------------------------------------- small pieces


def test_signed_webhooks_verify_with_the_sdk_and_stale_ones_do_not() -> None:
    client = openai.OpenAI(api_key="x")
    body = json.dumps(course.signup_event(course.CUSTOMERS[0]))
    client.webhooks.verify_signature(body, sign_webhook(body, course.SIGNUP_SECRET, msg_id="m1"), secret=course.SIGNUP_SECRET)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.verify_signature(body, sign_webhook(body, course.SIGNUP_SECRET, msg_id="m1", timestamp=int(time.time()) - 900),
                                         secret=course.SIGNUP_SECRET)
    event = client.webhooks.unwrap(json.dumps({"id": "evt_1", "object": "event", "created_at": 1, "type": "response.completed",
                                               "data": {"id": "resp_1"}}),
                                   sign_webhook(json.dumps({"id": "evt_1", "object": "event", "created_at": 1,
                                                            "type": "response.completed", "data": {"id": "resp_1"}}),
                                                course.OPENAI_WEBHOOK_SECRET, msg_id="m2"),
                                   secret=course.OPENAI_WEBHOOK_SECRET)
    assert event.type == "response.completed" and event.data.id == "resp_1"


def test_sse_frames_survive_newlines_and_comments() -> None:
    text = sse("delta", {"text": "two\n\nparagraphs"}) + ": ping\n\n" + sse("done", {})
    assert parse_sse(text) == [("delta", {"text": "two\n\nparagraphs"}), (":", "ping"), ("done", {})]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile(list(map(float, range(1, 21))), 95) == 19.0


def test_the_check_harness_survives_an_app_that_raises(sol: ModuleType) -> None:
    async def go() -> Any:
        async def broken(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                raise RuntimeError("boom")

        async with AsgiClient(broken) as web:
            return await web.request("GET", "/")

    got = run_web_virtual(go())
    assert isinstance(got.raised, RuntimeError) and got.status == 0


# --------------------------------------------------------------------------- the app on real servers


@pytest.fixture(scope="module")
def running(sol: ModuleType) -> Iterator[dict[str, Any]]:
    """The reference app on uvicorn at 127.0.0.1, with the recordings at a fifth of their pace and a real SMTP sink."""
    with SmtpSink() as sink:
        client = upstream_client("ex08", pace=LoopPacer(SCALE), max_retries=0)
        log = RequestLog()
        app = sol.create_app(client, mailer=SmtpMailer(port=sink.port), log=log)
        with serve(app) as base:
            yield {"base": base, "sink": sink, "client": client, "log": log, "app": app}


def test_headlines_over_http(running: dict[str, Any]) -> None:
    got = httpx2.post(running["base"] + "/api/headlines", json=course.PRODUCTS[1], headers={"x-client-id": "t1"}, timeout=10)
    assert got.status_code == 200
    assert len(got.json()["headlines"]) == 3
    bad = httpx2.post(running["base"] + "/api/headlines", json={"product_name": "x"}, timeout=10)
    assert bad.status_code == 422 and "key_benefit" in bad.text


def test_sse_over_http_and_a_client_that_hangs_up_closes_the_upstream(running: dict[str, Any]) -> None:
    ledger = running["client"]._labkit_transport.ledger
    with httpx2.stream("POST", running["base"] + "/api/chat/stream", json={"message": course.RELAY_MESSAGES["short"]}, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    names = [name for name, _ in parse_sse(text)]
    assert names[-2:] == ["usage", "done"] and names.count("delta") >= 3
    before = ledger.closed_early
    with httpx2.stream("POST", running["base"] + "/api/chat/stream", json={"message": course.RELAY_MESSAGES["long"]}, timeout=10) as r:
        seen = 0
        for line in r.iter_lines():
            seen += line.startswith("event: delta")
            if seen == 3:
                break  # hang up: closing the response closes the connection
    deadline = time.monotonic() + 5
    while ledger.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ledger.in_flight == 0, "the upstream stream stayed open after the client hung up"
    assert ledger.closed_early == before + 1


def test_signup_webhook_delivers_a_real_email(running: dict[str, Any]) -> None:
    sink: SmtpSink = running["sink"]
    count = len(sink.messages)
    customer = course.CUSTOMERS[2]
    body = json.dumps(course.signup_event(customer))
    headers = sign_webhook(body, course.SIGNUP_SECRET, msg_id="msg_real_smtp")
    got = httpx2.post(running["base"] + "/webhooks/signup", content=body, headers=headers, timeout=10)
    assert got.status_code == 202
    again = httpx2.post(running["base"] + "/webhooks/signup", content=body, headers=headers, timeout=10)
    assert again.status_code == 200
    mail = sink.wait_for(count + 1)[count]
    assert mail["To"] == customer["email"] and mail["Subject"] == course.onboarding_subject(customer)
    assert "Lucía" in mail.get_content()
    time.sleep(0.3)
    assert len(sink.messages) == count + 1  # the duplicate sent nothing


def test_chat_over_a_real_websocket(running: dict[str, Any]) -> None:
    from websockets.sync.client import connect

    url = running["base"].replace("http://", "ws://") + "/ws/chat"
    with connect(url) as ws:
        ws.send(json.dumps({"message": course.CHAT_SCRIPT[0]}))
        messages = []
        while not messages or messages[-1]["type"] not in ("done", "error"):
            messages.append(json.loads(ws.recv(timeout=10)))
    assert messages[-1]["type"] == "done"
    assert sum(m["type"] == "delta" for m in messages) >= 3


def test_dashboard_metrics_over_http(running: dict[str, Any]) -> None:
    got = httpx2.get(running["base"] + "/api/metrics", timeout=10).json()
    assert got["requests"] >= 1 and set(got) == set(course.METRICS_KEYS)
    page = httpx2.get(running["base"] + "/dashboard", timeout=10).text
    assert "/api/metrics" in page and "http" not in page.split("<script>")[0].split("<style>")[0]  # nothing fetched from elsewhere


def test_the_local_stand_in_for_the_api_streams_in_time() -> None:
    with serve(upstream_app("ex08", pace=LoopPacer(SCALE))) as base:
        client = openai.OpenAI(api_key="x", base_url=base + "/v1", max_retries=0)
        start = time.perf_counter()
        stream = client.responses.create(**course.stream_request(course.RELAY_MESSAGES["short"]))
        first = None
        for event in stream:
            if event.type == "response.output_text.delta" and first is None:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
    want = by_label("relay: the short answer")
    assert first is not None and first >= 0.8 * SCALE * 0.29
    assert total >= 0.8 * SCALE * want.offsets[-1] / 1000


def test_pages_are_self_contained() -> None:
    root = Path(__file__).resolve().parent.parent / "labkit" / "web_pages"
    for page in root.glob("*.html"):
        text = page.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', text) and "cdn" not in text.lower(), page.name


def test_memory_mailer_keeps_messages() -> None:
    from email.message import EmailMessage

    mailer = MemoryMailer()
    msg = EmailMessage()
    msg["To"] = "a@b.example"
    asyncio.run(mailer.send(msg))
    assert mailer.sent == [msg]


def test_replay_transport_without_pace_is_unchanged() -> None:
    t = ReplayTransport(["ex08"])
    assert t.pace is None and t.ledger.opened == 0


def test_recorded_streams_keep_their_measured_arrival_times(tmp_path: Path) -> None:
    from labkit.replay import RecordTransport, _event_offsets

    arrived = [(0.1, b"event: a\ndata: 1\n\nevent: b\nda"), (0.35, b"ta: 2\n\n"), (0.5, b"data: [DONE]\n\n")]
    assert _event_offsets(arrived) == [100, 350, 500]
    t = RecordTransport(tmp_path / "recorded.json")
    body = b"data: {}\n\ndata: [DONE]\n\n"
    t._sync = httpx2.MockTransport(lambda r: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body))
    answer = t.handle_request(httpx2.Request("POST", "https://api.openai.com/v1/chat/completions", json={"stream": True}))
    assert answer.read() == body
    saved = json.loads((tmp_path / "recorded.json").read_text())["interactions"][0]["labkit"]
    assert len(saved["offsets_ms"]) == 2 and saved["provenance"] == "recorded"
