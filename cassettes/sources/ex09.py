"""Notebook 09: tool loops, structured outputs and conversation state (authored answers).

The tool conversations run the reference solution's ``run_tools`` (``solutions/ex09_tools.py``)
through the real SDK, with the shop's real tools: a fresh SQLite orders database and the weather
service (called in-process over WSGI here; the notebook calls the same application on a real
server on 127.0.0.1, and the answers are byte for byte the same). ``a.turns`` says what the model
answers each round; the call ids it is given come back in the next request because the loop sends
them. Errors are what the API answers: the lint's verdict for tools on Chat Completions, the
strict-schema rules for a free-form dict (``labkit.simulate``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import openai

from labkit.checks import load_learner_module
from labkit.course import ex09 as course
from labkit.paths import solutions_dir
from labkit.simulate import api_error_for, strict_schema_problem

sol = load_learner_module(solutions_dir() / "ex09_tools.py")

LISBON = "Lisbon is sunny at 16.5 °C today: leave the rain jacket at home."


def card_answer() -> dict[str, Any]:
    return {"people": [{
        "full_name": "Sarah Chen", "email": "sarah.chen@techcorp.example", "phone": "+1 415 555 0123",
        "job_title": "Senior Software Engineer",
        "company": {"name": "Techcorp", "industry": "fintech", "size": "about 500 people"},
        "address": {"street": "123 Innovation Drive", "city": "San Francisco", "region": "CA", "postal_code": "94102",
                    "country": "USA"},
        "skills": ["Python", "distributed systems", "machine learning"],
    }]}


def thread_answer() -> dict[str, Any]:
    return {"people": [
        {"full_name": "Jonas Weber", "email": None, "phone": None, "job_title": "Head of Procurement",
         "company": {"name": "Almtal Bergsport GmbH", "industry": None, "size": None},
         "address": {"street": None, "city": "Innsbruck", "region": None, "postal_code": None, "country": None},
         "skills": []},
        {"full_name": "Priya Nair", "email": "priya.nair@example.org", "phone": "+44 20 7946 0958",
         "job_title": "Logistics", "company": None, "address": None, "skills": []},
    ]}


def build(a: Any) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ex09-source-"))
    db = course.create_orders_db(tmp / "orders.db")
    http = course.weather_client_in_process()
    shop = sol.build_registry(db, http)
    q = course.QUESTIONS

    # ----------------------------------------------------------------- from functions to tools
    tool = {"type": "function", "name": "get_weather", "description": "Current weather in a city.",
            "parameters": sol.strict_schema(course.GetWeather), "strict": True}
    chat_tool = {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
    question = [{"role": "user", "content": course.LESSON_QUESTION}]
    refused = {"model": course.MODEL, "messages": question, "tools": [chat_tool]}
    a.call(lambda c: c.chat.completions.create(**refused), error=api_error_for(refused),
           label="function tools on Chat Completions with a model that needs the Responses API: 400")
    a.call(lambda c: c.chat.completions.create(model=course.CHAT_MODEL, messages=question, tools=[chat_tool],
                                               reasoning_effort=course.CHAT_EFFORT),
           tool_calls=[{"name": "get_weather", "arguments": {"city": "Lisbon"}}],
           label="Chat Completions tools on the fast model at effort none")
    a.call(lambda c: c.responses.create(model=course.MODEL, input=course.LESSON_QUESTION, tools=[tool],
                                        reasoning={"effort": course.EFFORT}),
           tool_calls=[{"name": "get_weather", "arguments": {"city": "Lisbon"}}],
           label="the same tool on the Responses API")

    # ----------------------------------------------------------------- a free-form dict, sent strict
    loose = {"type": "function", "name": "tag_order", "description": "Tag an order.",
             "parameters": openai.pydantic_function_tool(course.TagOrder)["function"]["parameters"], "strict": True}
    problem = strict_schema_problem(loose["parameters"], "function 'tag_order'")
    a.call(lambda c: c.responses.create(model=course.MODEL, input="Tag order A-1001 as a gift.", tools=[loose]),
           error={"status": 400, "message": problem, "type": "invalid_request_error", "param": "tools[0].parameters",
                  "code": "invalid_function_parameters"},
           label="a free-form dict in a strict schema: 400")

    # ----------------------------------------------------------------- the loop and its edge cases
    def loop(question: str, turns: list[dict[str, Any]], registry: Any = shop, label: str = "", **kwargs: Any) -> Any:
        return a.turns(lambda c: sol.run_tools(c, registry, question, **kwargs), turns, label=label)

    loop(q["loop"], [
        {"tool_calls": [{"name": "get_order", "arguments": {"order_id": "A-1001"}},
                        {"name": "get_weather", "arguments": {"city": "Lisbon"}}]},
        {"reply": f"Your trail running shoes (A-1001) have shipped. {LISBON}"},
    ], label="the loop: two calls, then the answer")
    loop(q["parallel"], [
        {"tool_calls": [{"name": "find_orders", "arguments": {"email": "dara.o'brien@example.com"}},
                        {"name": "get_weather", "arguments": {"city": "São Paulo"}},
                        {"name": "get_weather", "arguments": {"city": "Zürich"}}]},
        {"reply": "You have two orders: A-1005 (trekking poles, shipped) and A-1004 (merino beanie, delivered). "
                  "São Paulo has thunderstorms at 24 °C; Zürich has snow showers at 3 °C."},
    ], label="three parallel calls")
    loop(q["invalid"], [
        {"tool_calls": [{"name": "get_order", "arguments": {"order_id": "1001"}}]},
        {"tool_calls": [{"name": "get_order", "arguments": {"order_id": "A-1001"}}]},
        {"reply": "Order A-1001 (trail running shoes) has shipped."},
    ], label="arguments that fail validation, corrected")
    loop(q["unknown"], [
        {"tool_calls": [{"name": "cancel_order", "arguments": {"order_id": "A-1003"}}]},
        {"reply": "I can't cancel orders myself. A-1003 is still processing, so our team can stop it before it ships: "
                  "reply to this email and I'll pass it on."},
    ], label="a tool that does not exist")
    slow = sol.build_registry(db, http, timeout=course.DEMO_TIMEOUT)
    loop(q["failing"], [
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": course.OFFLINE}},
                        {"name": "get_weather", "arguments": {"city": course.SLOW}}]},
        {"reply": "I can't tell right now: the Nuuk station is offline and the Longyearbyen one did not answer in time."},
    ], registry=slow, label="a tool that raises and one that times out")
    refund = {"tool_calls": [{"name": "refund_order",
                              "arguments": {"order_id": "A-1002", "amount": 24.5, "reason": "wool socks missing from the parcel"}}]}
    loop(q["refund"], [refund, {"reply": "I haven't refunded anything yet: the refund of 24.50 EUR on A-1002 needs your "
                                         "confirmation."}],
         confirm=lambda name, args: False, label="a refund, declined")
    loop(q["refund"], [refund, {"reply": "Done: 24.50 EUR refunded on A-1002 for the missing socks (refund 1)."}],
         confirm=lambda name, args: True, label="a refund, confirmed")
    loop(q["endless"], [
        {"tool_calls": [{"name": "find_orders", "arguments": {"email": "ana.souza@example.com"}}]},
        {"tool_calls": [{"name": "find_orders", "arguments": {"email": "ben.okafor@example.com"}}]},
        {"tool_calls": [{"name": "find_orders", "arguments": {"email": "chloe.martin@example.com"}}]},
    ], max_rounds=course.DEMO_MAX_ROUNDS, label="a model that keeps calling tools")

    # ----------------------------------------------------------------- structured outputs
    a.call(lambda c: sol.extract(c, course.CARD_TEXT), json.dumps(card_answer()), label="nested extraction, responses.parse")
    a.call(lambda c: c.chat.completions.parse(model=course.CHAT_MODEL, messages=course.extract_input(course.THREAD_TEXT),
                                              response_format=course.Extraction, reasoning_effort=course.CHAT_EFFORT),
           json.dumps(thread_answer()), label="two people, chat.completions.parse")
    a.call(lambda c: sol.extract(c, course.REFUSED_TEXT),
           refusal="I can't help with finding or tracking a private person's whereabouts.", label="a refusal")

    # ----------------------------------------------------------------- conversation state
    first = a.call(lambda c: c.responses.create(model=course.MODEL, input=course.opening("Hi, I'm Ana Souza; my order is A-1001."),
                                                reasoning={"effort": course.EFFORT}),
                   "Hi Ana! Order A-1001, your trail running shoes, shipped on its way to you. How can I help?",
                   label="turn 1, stored")
    a.call(lambda c: c.responses.create(model=course.MODEL, previous_response_id=first.id, input="Remind me what I ordered?",
                                        reasoning={"effort": course.EFFORT}),
           "You ordered trail running shoes (order A-1001, 59.90 EUR).", label="turn 2, previous_response_id")
    conv = a.call(lambda c: c.conversations.create(metadata={"customer": "ana.souza@example.com"}), label="a conversation")
    a.call(lambda c: c.responses.create(model=course.MODEL, conversation=conv.id,
                                        input=course.opening("Hi, I'm Ana Souza; my order is A-1001."),
                                        reasoning={"effort": course.EFFORT}),
           "Hi Ana! How can I help with order A-1001?", label="turn 1 in the conversation")
    a.call(lambda c: c.responses.create(model=course.MODEL, conversation=conv.id, input="Remind me what I ordered?",
                                        reasoning={"effort": course.EFFORT}),
           "Trail running shoes, order A-1001.", label="turn 2 in the conversation")
    a.call(lambda c: c.conversations.items.list(conv.id, order="asc"), label="the conversation's items")
    a.call(lambda c: c.conversations.delete(conv.id), label="deleted")

    # ----------------------------------------------------------------- long conversations
    history = course.long_history()
    compacted = a.call(lambda c: c.responses.compact(model=course.MODEL, input=history),
                       "The customer asked about each of orders A-1001 to A-1007 in turn; the assistant looked some up "
                       "and gave each order's status, items, total and date.",
                       label="compaction")
    follow = "Thanks. Which of my orders is still processing?"
    carried = [item.model_dump(exclude_none=True, warnings=False) for item in compacted.output]
    a.call(lambda c: c.responses.create(model=course.MODEL, input=[*carried, {"role": "user", "content": follow}],
                                        reasoning={"effort": course.EFFORT}),
           "A-1003 (the water bottle) is still processing.", label="after compaction")
    a.call(lambda c: c.responses.create(model=course.MODEL, input=[*history, {"role": "user", "content": follow}],
                                        reasoning={"effort": course.EFFORT}),
           "A-1003 (the water bottle) is still processing.", label="the whole history instead")
    http.close()
    db.close()
