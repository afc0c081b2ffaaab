"""Exercise 01 as a small class that reads either API's JSON, priced with labkit.costs.estimate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openai import OpenAI
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from labkit.costs import estimate
from labkit.course.ex01 import EFFORT, INCOMPLETE_REASONS, MODEL, PROMPT, SYSTEM


@dataclass(frozen=True)
class FirstCall:
    """The lesson's first call, and how to read what comes back."""

    model: str = MODEL
    effort: str = EFFORT

    @staticmethod
    def conversation(prompt: str = PROMPT) -> list[dict[str, str]]:
        return [{"role": role, "content": text} for role, text in (("system", SYSTEM), ("user", prompt))]

    def send(self, client: OpenAI) -> ChatCompletion:
        return client.chat.completions.create(model=self.model, messages=self.conversation(PROMPT),  # type: ignore[arg-type]
                                              reasoning_effort=self.effort)  # type: ignore[arg-type]

    @staticmethod
    def record(response: ChatCompletion | Response) -> dict[str, Any]:
        data = response.model_dump()
        match data:
            case {"object": "chat.completion", "choices": [first, *_], "usage": usage}:
                text, finish = first["message"]["content"], first["finish_reason"]
                inp, out = usage["prompt_tokens"], usage["completion_tokens"]
                cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
                written = (usage.get("prompt_tokens_details") or {}).get("cache_write_tokens") or 0
                reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
            case {"object": "response", "usage": usage}:
                text = "".join(part["text"] for item in data["output"] if item["type"] == "message"
                               for part in item["content"] if part["type"] == "output_text")
                why = (data.get("incomplete_details") or {}).get("reason")
                finish = "stop" if data["status"] == "completed" else INCOMPLETE_REASONS[why]
                inp, out = usage["input_tokens"], usage["output_tokens"]
                cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
                written = (usage.get("input_tokens_details") or {}).get("cache_write_tokens") or 0
                reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
            case _:
                raise TypeError(f"not a ChatCompletion or a Response: {type(response).__name__}")
        price = estimate(inp, out, data["model"], cached_tokens=cached, cache_write_tokens=written, reasoning_tokens=reasoning)
        return {"id": data["id"], "text": text, "model": data["model"], "finish_reason": finish, "input_tokens": inp,
                "output_tokens": out, "reasoning_tokens": reasoning, "cost_usd": price.total_usd}


_CALL = FirstCall()
build_messages = _CALL.conversation


def first_completion(client: OpenAI) -> ChatCompletion:
    return _CALL.send(client)


summarize = FirstCall.record
