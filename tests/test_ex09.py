"""Exercise 09: the real services, the scripted model's API rules, the new authoring shapes, the reference."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from pydantic import BaseModel

import labkit
from labkit.authoring import Author
from labkit.checks import ex09 as checks
from labkit.checks import load_learner_module
from labkit.course import ex09 as course
from labkit.course.models import DEFAULT, FAST
from labkit.simulate import ScriptedModel, Turn, strict_schema_problem

ROOT = Path(__file__).resolve().parent.parent
sol = load_learner_module(ROOT / "solutions" / "ex09_tools.py")
CITIES = ["Paris", "são paulo", "ZÜRICH", "Paris&country=FR", "Paris#today", course.OFFLINE, "Atlantis", ""]


@pytest.fixture(scope="module")
def service() -> Any:
    with course.WeatherService() as running:
        yield running


# --------------------------------------------------------------------------- the real services


def test_the_weather_service_answers_on_loopback_and_in_process_alike(service: Any) -> None:
    real, local = service.client(), course.weather_client_in_process()
    assert service.url.startswith("http://127.0.0.1:")
    for city in CITIES:
        a, b = real.get(course.WEATHER_PATH, params={"city": city}), local.get(course.WEATHER_PATH, params={"city": city})
        assert (a.status_code, a.json()) == (b.status_code, b.json()), city
    assert real.get(course.WEATHER_PATH, params={"city": "são paulo"}).json() == course.weather_for("São Paulo")
    assert real.get(course.WEATHER_PATH, params={"city": course.OFFLINE}).status_code == 503
    assert real.get("/v2/other").status_code == 404


def test_the_shop_tools_give_the_same_results_over_a_real_socket(service: Any, tmp_path: Path) -> None:
    """The checks reach the service in-process (the grader forbids sockets): that must not change a result."""
    for calls in (checks.SQL_CALLS, checks.HTTP_CALLS, checks.REFUND_CALLS):
        in_process = checks._shop(sol, calls)
        db = course.create_orders_db(tmp_path / "orders.db")
        registry = sol.build_registry(db, service.client())
        for i, (name, args, confirmed) in enumerate(calls, 1):
            raw = registry.execute(name, json.dumps(args, ensure_ascii=False), confirm=(lambda n, a: True) if confirmed else None)
            key = next(k for k in in_process if k.startswith(f"call {i}, "))
            assert ("an error result" if checks.is_error(raw) else json.loads(raw)) == in_process[key], key
        db.close()


def test_the_orders_database_is_usable_from_a_worker_thread(tmp_path: Path) -> None:
    db = course.create_orders_db(tmp_path / "orders.db")
    with ThreadPoolExecutor(1) as pool:
        row = pool.submit(lambda: db.execute("SELECT total_cents FROM orders WHERE order_id = 'A-1002'").fetchone()).result()
    assert row == (12450,)
    assert course.create_orders_db(tmp_path / "orders.db").execute("SELECT count(*) FROM refunds").fetchone() == (0,)


def test_wait_for_behaves_like_future_result_with_a_timeout() -> None:
    with ThreadPoolExecutor(2) as pool:
        assert course.wait_for(pool.submit(lambda: 7), 1.0) == 7
        with pytest.raises(LookupError):
            course.wait_for(pool.submit(lambda: (_ for _ in ()).throw(LookupError("x"))), 1.0)
        gate = threading.Event()
        start = time.perf_counter()
        with pytest.raises(TimeoutError):
            course.wait_for(pool.submit(gate.wait, 5), 0.05)
        assert time.perf_counter() - start < 1.0
        gate.set()


# --------------------------------------------------------------------------- strict schemas and the scripted model


class Loose(BaseModel):
    name: str
    extra: dict[str, int]


def test_strict_schema_rules() -> None:
    sdk = openai.pydantic_function_tool(course.Extraction)["function"]["parameters"]
    assert strict_schema_problem(sdk, "x") is None
    assert "'additionalProperties' is required" in str(strict_schema_problem(course.Extraction.model_json_schema(), "x"))
    assert "('properties', 'extra')" in str(strict_schema_problem(openai.pydantic_function_tool(Loose)["function"]["parameters"], "x"))
    missing = {"type": "object", "properties": {"a": {"type": "string"}}, "required": [], "additionalProperties": False}
    assert "Missing 'a'" in str(strict_schema_problem(missing, "x"))
    assert "type: \"object\"" in str(strict_schema_problem({"type": "string"}, "x"))
    with pytest.raises(TypeError):
        sol.strict_schema(Loose)


def _registry() -> Any:
    registry = sol.ToolRegistry()
    checks.Shelf().register(registry)
    return registry


def test_the_scripted_model_enforces_call_ids_like_the_api() -> None:
    calls = (("stock_level", {"sku": "TP-200"}), ("stock_level", {"sku": "HL-050"}))
    model = ScriptedModel([Turn(calls=calls), Turn(text="done")])
    client = model.client()
    tools = _registry().schemas("responses")
    first = client.responses.create(model=DEFAULT, input="stock?", tools=tools)
    fcs = [o for o in first.output if o.type == "function_call"]
    assert [o.type for o in first.output] == ["reasoning", "function_call", "function_call"]
    one = {"type": "function_call_output", "call_id": fcs[0].call_id, "output": "{}"}
    with pytest.raises(openai.BadRequestError, match=f"No tool output found for function call {fcs[1].call_id}"):
        client.responses.create(model=DEFAULT, input=["stock?", *first.output, one], tools=tools)
    stray = {"type": "function_call_output", "call_id": "call_nope", "output": "{}"}
    with pytest.raises(openai.BadRequestError, match="No tool call found for function call output with call_id call_nope"):
        client.responses.create(model=DEFAULT, input=["stock?", stray], tools=tools)
    with pytest.raises(openai.BadRequestError, match="without its required 'reasoning' item"):
        client.responses.create(model=DEFAULT, input=["stock?", *fcs, one, {**one, "call_id": fcs[1].call_id}], tools=tools)
    with pytest.raises(openai.BadRequestError, match="Previous response with id 'resp_x' not found"):
        client.responses.create(model=DEFAULT, previous_response_id="resp_x", input="more", tools=tools)
    outs = [{"type": "function_call_output", "call_id": f.call_id, "output": "{}"} for f in fcs]
    final = client.responses.create(model=DEFAULT, previous_response_id=first.id, input=outs, tools=tools)
    assert final.output_text == "done"
    assert model.answered[-1].outputs == {f.call_id: ["{}"] for f in fcs}


def test_the_scripted_model_on_chat_completions() -> None:
    model = ScriptedModel([Turn(calls=(("stock_level", {"sku": "TP-200"}),)), Turn(text="14")])
    client = model.client()
    tools = _registry().schemas("chat")
    with pytest.raises(openai.BadRequestError, match="Responses API"):
        client.chat.completions.create(model=DEFAULT, messages=[{"role": "user", "content": "x"}], tools=tools)
    msgs: list[Any] = [{"role": "user", "content": "x"}]
    first = client.chat.completions.create(model=FAST, messages=msgs, tools=tools, reasoning_effort="none")
    message = first.choices[0].message
    with pytest.raises(openai.BadRequestError, match="did not have response messages"):
        client.chat.completions.create(model=FAST, messages=[*msgs, message, {"role": "user", "content": "?"}], tools=tools,
                                       reasoning_effort="none")
    with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding message"):
        client.chat.completions.create(model=FAST, messages=[*msgs, {"role": "tool", "tool_call_id": "call_x", "content": "{}"}],
                                       tools=tools, reasoning_effort="none")
    reply = {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "{}"}
    final = client.chat.completions.create(model=FAST, messages=[*msgs, message, reply], tools=tools, reasoning_effort="none")
    assert final.choices[0].message.content == "14"


def test_tool_choice_none_and_repeat_last() -> None:
    model = ScriptedModel([Turn(calls=(("stock_level", {"sku": "TP-200"}),))], repeat_last=True, final_text="stop")
    client = model.client()
    tools = _registry().schemas("responses")
    ids = {next(o.call_id for o in client.responses.create(model=DEFAULT, input="x", tools=tools, store=False).output
                if o.type == "function_call") for _ in range(3)}
    assert len(ids) == 3  # a new call id each time
    forced = client.responses.create(model=DEFAULT, input="x", tools=tools, tool_choice="none")
    assert forced.output_text == "stop"


# --------------------------------------------------------------------------- authoring: the new shapes


def test_authored_function_calls_refusals_conversations_and_compaction() -> None:
    a = Author("t09")
    tool = _registry().schemas("responses")[:1]
    streamed = a.call(lambda c: list(c.responses.create(model=DEFAULT, input="x", tools=tool, stream=True)),
                      tool_calls=[{"name": "stock_level", "arguments": {"sku": "TP-200"}}])
    done = streamed[-1].response
    assert [o.type for o in done.output][-1] == "function_call" and json.loads(done.output[-1].arguments) == {"sku": "TP-200"}
    assert "response.function_call_arguments.done" in {e.type for e in streamed}
    refused = a.call(lambda c: c.responses.parse(model=DEFAULT, input="x", text_format=course.Extraction), refusal="No.")
    assert refused.output_parsed is None and refused.output[-1].content[0].refusal == "No."
    chat = a.call(lambda c: c.chat.completions.parse(model=FAST, messages=[{"role": "user", "content": "x"}],
                                                     response_format=course.Extraction), refusal="No.")
    assert chat.choices[0].message.refusal == "No." and chat.choices[0].message.parsed is None
    first = a.call(lambda c: c.responses.create(model=DEFAULT, input="My name is Ana."), "Hi Ana.")
    second = a.call(lambda c: c.responses.create(model=DEFAULT, input="My name?", previous_response_id=first.id), "Ana.")
    alone = a.call(lambda c: c.responses.create(model=DEFAULT, input="My name?"), "Ana.")
    assert second.usage.input_tokens > alone.usage.input_tokens  # the stored turn is billed again
    conv = a.call(lambda c: c.conversations.create())
    a.call(lambda c: c.responses.create(model=DEFAULT, input="Hello", conversation=conv.id), "Hi!")
    listed = a.call(lambda c: c.conversations.items.list(conv.id, order="asc"))
    assert [getattr(i, "role", i.type) for i in listed.data][0] == "user" and listed.data[-1].role == "assistant"
    newest_first = a.call(lambda c: c.conversations.items.list(conv.id))
    assert newest_first.data[0].id == listed.data[-1].id
    assert a.call(lambda c: c.conversations.delete(conv.id)).deleted is True
    history = course.long_history()
    compacted = a.call(lambda c: c.responses.compact(model=DEFAULT, input=history), "A summary of the orders discussed.")
    kinds = [o.type for o in compacted.output]
    assert kinds[-1] == "compaction" and kinds.count("message") == sum(1 for i in history if i.get("role") == "user")
    assert compacted.usage.output_tokens == labkit.count_tokens("A summary of the orders discussed.", DEFAULT)


# --------------------------------------------------------------------------- the reference


def test_the_reference_trim_matches_the_checks_reading_of_the_contract() -> None:
    history = course.long_history()
    full = course.history_tokens(history, course.MODEL)
    for budget in range(0, full + 50, 97):
        want = checks.reference_trim(history, budget, course.MODEL)
        if want is None:
            with pytest.raises(ValueError):
                sol.trim_history(history, budget=budget)
        else:
            got = sol.trim_history(history, budget=budget)
            assert got == want and course.history_tokens(got, course.MODEL) <= budget


def test_every_notebook_loop_request_of_the_reference_is_an_exact_recording(tmp_path: Path) -> None:
    client = labkit.client("ex09")
    db = course.create_orders_db(tmp_path / "orders.db")
    shop = sol.build_registry(db, course.weather_client_in_process())
    result = sol.run_tools(client, shop, course.QUESTIONS["parallel"])
    assert result.stopped == "answer" and len(result.outputs) == 3
    served = labkit.transport_of(client).served
    assert [s.tier for s in served] == ["exact", "exact"]


def test_the_lesson_request_is_flagged() -> None:
    codes = {f.code for f in labkit.lint_request(**course.lesson_request(FAST))}
    assert "deprecated-functions" in codes


def test_run_result_says_why_it_stopped() -> None:
    assert "stopped after 3 rounds" in str(course.RunResult(None, "max_rounds", 3))
    assert str(course.RunResult("ok", "answer", 1)).endswith("ok")


def test_in_process_transport_is_httpx2() -> None:
    assert isinstance(course.weather_client_in_process()._transport, httpx2.WSGITransport)
