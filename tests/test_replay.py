"""Replay of every endpoint shape, honest matching, the simulator, misses and provenance."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest
import vcr
from selftest import HELLO, MODEL, REASONING_MODEL, Triage

import labkit
from labkit.replay import CassetteError, ReplayTransport, load_cassette

TICKET = "Ticket: 'I was charged twice this month, please fix it today.'"


@pytest.fixture
def c() -> openai.OpenAI:
    return labkit.client("selftest")


def test_replay_is_default_without_key(c: openai.OpenAI) -> None:
    assert labkit.current_mode() == "replay"
    assert isinstance(c, openai.OpenAI)
    assert "REPLAY" in labkit.banner()


def test_chat_completion(c: openai.OpenAI) -> None:
    r = c.chat.completions.create(model=MODEL, messages=HELLO)
    assert r.choices[0].message.content.startswith("Welcome aboard")
    assert r.choices[0].finish_reason == "stop"
    assert r.model.startswith(MODEL)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0
    assert "authored" in labkit.provenance(c) and "exact match" in labkit.provenance(c)


def test_usage_is_counted_by_tiktoken(c: openai.OpenAI) -> None:
    r = c.chat.completions.create(model=MODEL, messages=HELLO)
    assert r.usage.prompt_tokens == labkit.count_tokens(HELLO, MODEL)
    reasoning = r.usage.completion_tokens_details.reasoning_tokens  # gpt-6 models reason at their default effort
    assert r.usage.completion_tokens == labkit.count_tokens(r.choices[0].message.content, MODEL) + reasoning
    assert reasoning > 0 and reasoning % 64 == 0


def test_chat_stream_with_usage(c: openai.OpenAI) -> None:
    chunks = list(c.chat.completions.create(model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "Hello and welcome: let's make your first request together."
    assert len(chunks) > 4 and chunks[-1].usage is not None


def test_chat_parse(c: openai.OpenAI) -> None:
    r = c.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": TICKET}], response_format=Triage)
    assert r.choices[0].message.parsed == Triage(category="billing", urgent=True)


def test_responses_create_stream_and_parse(c: openai.OpenAI) -> None:
    r = c.responses.create(model=REASONING_MODEL, input="Name one benefit of retries with jitter.")
    assert "Jitter" in r.output_text
    assert r.usage.output_tokens_details.reasoning_tokens > 0
    with c.responses.stream(model=REASONING_MODEL, input="Say 'ready' if you can hear me.") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        assert stream.get_final_response().output_text == "ready" == "".join(deltas)
    parsed = c.responses.parse(model=MODEL, input=TICKET, text_format=Triage)
    assert parsed.output_parsed == Triage(category="billing", urgent=True)


def test_repeated_requests_play_in_order(c: openai.OpenAI) -> None:
    ask = lambda: c.chat.completions.create(  # noqa: E731
        model=MODEL, temperature=1.2, reasoning_effort="none", messages=[{"role": "user", "content": "Pick a colour. One word."}]
    ).choices[0].message.content
    assert [ask() for _ in range(4)] == ["Red", "Teal", "Amber", "Red"]


def test_recorded_error_is_raised_as_the_sdk_error(c: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model=REASONING_MODEL, temperature=0.2, max_tokens=300, messages=HELLO)
    assert info.value.code == "unsupported_value" and info.value.param == "temperature"


def test_a_changed_parameter_is_a_miss_never_another_answer(c: openai.OpenAI) -> None:
    with pytest.raises(labkit.ReplayMiss) as info:
        c.chat.completions.create(model=MODEL, messages=HELLO, temperature=0.3)
    assert "temperature: sent 0.3, recorded <absent>" in str(info.value)
    with pytest.raises(labkit.ReplayMiss, match="model: sent 'gpt-6-sol'"):
        c.chat.completions.create(model="gpt-6-sol", messages=HELLO)
    with pytest.raises(labkit.ReplayMiss, match="max_completion_tokens"):
        c.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=50)
    assert labkit.transport_of(c).served == []


@pytest.mark.parametrize(
    "extra",
    [{"safety_identifier": "user-123"}, {"user": "u1"}, {"metadata": {"team": "a"}}, {"store": False},
     {"prompt_cache_key": "k"}, {"service_tier": "default"}, {"temperature": 1}, {"top_p": 1.0},
     {"stream": False}, {"n": 1}],
)
def test_parameters_that_cannot_change_the_answer_are_ignored(c: openai.OpenAI, extra: dict) -> None:
    r = c.chat.completions.create(model=MODEL, messages=HELLO, **extra)
    assert r.choices[0].message.content.startswith("Welcome aboard")
    assert labkit.transport_of(c).served[-1].tier == "exact"


def test_text_parts_are_the_same_message(c: openai.OpenAI) -> None:
    parts = [{**m, "content": [{"type": "text", "text": m["content"]}]} for m in HELLO]
    assert c.chat.completions.create(model=MODEL, messages=parts).choices[0].message.content.startswith("Welcome")


def test_an_error_recording_answers_only_its_cause(c: openai.OpenAI) -> None:
    # the recorded 400 was made for temperature=0.2 + max_tokens on a reasoning model: a valid
    # request on the same conversation must not receive it
    with pytest.raises(labkit.ReplayMiss):
        c.chat.completions.create(model=REASONING_MODEL, messages=HELLO, max_completion_tokens=300)


def test_simulator_answers_a_valid_variant_honestly() -> None:
    c = labkit.client("selftest", simulate=True)
    mine = [{"role": "system", "content": "You onboard new API users. Be warm and brief."}, HELLO[-1]]
    r = c.chat.completions.create(model="gpt-6-sol", messages=mine, safety_identifier="u")
    served = labkit.transport_of(c).served[-1]
    assert served.tier == "simulated" and served.provenance == "simulated"
    assert r.choices[0].message.content.startswith("Welcome aboard")  # the task's recorded answer
    assert r.model == "gpt-6-sol" and r.usage.prompt_tokens == labkit.count_tokens(mine, "gpt-6-sol")
    assert r.id.startswith("chatcmpl-") and "simulated" in labkit.provenance(c)


def test_simulator_gives_the_api_error_for_a_request_the_api_rejects() -> None:
    c = labkit.client("selftest", simulate=True)
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="gpt-6.1-sol", messages=HELLO, temperature=0.2)
    assert info.value.param == "temperature" and info.value.code == "unsupported_parameter"
    with pytest.raises(openai.NotFoundError) as gone:
        c.chat.completions.create(model="o1", messages=HELLO)
    assert gone.value.code == "model_not_found"


def test_simulator_never_invents_an_unknown_task() -> None:
    c = labkit.client("selftest", simulate=True)
    with pytest.raises(labkit.ReplayMiss):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "A question nobody recorded"}])


def test_miss_names_request_closest_and_how_to_go_live(c: openai.OpenAI) -> None:
    with pytest.raises(labkit.ReplayMiss) as info:
        c.chat.completions.create(model="gpt-6-sol", messages=[HELLO[0], {"role": "user", "content": "Something else"}])
    msg = str(info.value)
    assert "POST /v1/chat/completions" in msg and "'Something else'" in msg
    assert "closest recording: selftest.json #0" in msg and f"model: sent 'gpt-6-sol', recorded '{MODEL}'" in msg
    assert "OPENAI_API_KEY" in msg and "make record" in msg


def test_miss_is_not_retried_by_the_sdk() -> None:
    c = labkit.client("selftest", max_retries=5)
    calls: list[object] = []
    c._sleep_for_retry = lambda **kw: calls.append(kw)  # type: ignore[method-assign]
    with pytest.raises(labkit.ReplayMiss):
        c.embeddings.create(model="text-embedding-3-small", input="x")
    assert calls == []
    assert labkit.transport_of(c).served == []


def test_raw_response_headers(c: openai.OpenAI) -> None:
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-labkit-provenance"] == "authored"
    assert int(raw.headers["x-ratelimit-remaining-requests"]) > 0
    assert raw.parse().choices[0].message.content


def test_async_client_replays_plain_and_stream() -> None:
    async def run() -> tuple[str, str]:
        ac = labkit.client("selftest", async_=True)
        assert isinstance(ac, openai.AsyncOpenAI)
        r = await ac.chat.completions.create(model=MODEL, messages=HELLO)
        s = await ac.chat.completions.create(model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True})
        text = "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])
        return r.choices[0].message.content, text

    plain, streamed = asyncio.run(run())
    assert plain.startswith("Welcome") and streamed.startswith("Hello and welcome")


def test_corrupt_cassette_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"interactions": [ {"request": ')
    with pytest.raises(CassetteError, match=r"broken\.json is not valid JSON.*make cassettes"):
        load_cassette(bad)
    bad.write_text('{"interactions": [{"request": {"uri": "https://x/v1"}}]}')
    with pytest.raises(CassetteError, match=r"broken\.json: interaction #0 is malformed"):
        ReplayTransport([bad])


def test_missing_cassette_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="make cassettes"):
        labkit.client(tmp_path / "nope.json")


def test_vcrpy_itself_replays_a_labkit_cassette(root: Path) -> None:
    """Cassettes are vcrpy's JSON format: vcrpy can replay them with a plain SDK client."""
    my_vcr = vcr.VCR(serializer="json", record_mode="none", match_on=["method", "uri", "body"])
    with my_vcr.use_cassette(str(root / "cassettes" / "selftest.json")):
        plain = openai.OpenAI(api_key="not-a-key", max_retries=0)
        r = plain.chat.completions.create(model=MODEL, messages=HELLO)
    assert r.choices[0].message.content.startswith("Welcome aboard")


def test_cassette_metadata_carries_provenance(root: Path) -> None:
    data = json.loads((root / "cassettes" / "selftest.json").read_text())
    assert data["metadata"]["labkit"]["provenance"] == "authored"
    assert data["metadata"]["labkit"]["source"] == "cassettes/sources/selftest.py"
    assert all(i["labkit"]["provenance"] == "authored" for i in data["interactions"])


def test_the_simulator_answers_only_from_a_recording_of_the_same_output_kind() -> None:
    from labkit.replay import output_kind

    schema = {"type": "object", "properties": {"sentiment": {}, "urgency": {}}}
    chat = {"response_format": {"type": "json_schema", "json_schema": {"name": "ticket", "schema": schema, "strict": True}}}
    responses = {"text": {"format": {"type": "json_schema", "name": "Ticket", "schema": schema, "strict": True}}}
    assert output_kind(chat) == output_kind(responses) == ("json_schema", frozenset({"sentiment", "urgency"}))
    assert output_kind({"messages": []}) == ("text", frozenset())
    assert output_kind({"response_format": {"type": "json_object"}}) == ("json_object", frozenset())
    assert output_kind(chat) != output_kind({"response_format": {"type": "json_object"}})
