"""Check a Chat Completions or Responses request before sending it.

``lint_request(**params)`` takes the keyword arguments you would pass to
``client.chat.completions.create`` or ``client.responses.create`` and returns findings for what
the API would reject (a 400 or 404) or what wastes money. A model's lifecycle is judged on the
day given as ``today`` (default: the real date), so a model that shuts down next week is a
warning today and an error after its date.

Codes (stable):

==========================  ========  ====================================================
code                        severity  when
==========================  ========  ====================================================
missing-model               error     no ``model``
model-shut-down             error     the model is past its shutdown date (404 model_not_found)
model-deprecated            warning   a shutdown date is announced: the date and the replacement
unknown-model               warning   not in the catalog (the SDK's list is consulted)
sampling-unsupported        error     temperature / top_p / logprobs / penalties the model or
                                      its reasoning effort does not accept
sampling-out-of-range       error     temperature outside 0-2, top_p outside 0-1
max-tokens-unsupported      error     ``max_tokens`` on a reasoning model
max-tokens-deprecated       warning   ``max_tokens`` elsewhere: use max_completion_tokens
reasoning-unsupported       error     an effort the model does not accept, or effort on a
                                      non-reasoning model
verbosity-unsupported       error     verbosity on a model without it
chat-tools-unsupported      error     function tools in Chat Completions where the model needs
                                      the Responses API (or effort none)
deprecated-functions        warning   ``functions`` / ``function_call``
json-mode-needs-json        error     ``json_object`` output with no "JSON" in the messages
stream-options-need-stream  error     ``stream_options`` without ``stream=True``
context-overflow            error     estimated prompt + output limit over the context window
max-output-exceeded         error     output limit above the model's maximum output
long-context-price          info      prompt over the long-context threshold: billed 2x / 1.5x
temperature-and-top-p       warning   both changed: change one of them
==========================  ========  ====================================================
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from labkit.catalog import ModelInfo, UnknownModelError, default_catalog

__all__ = ["MAX_INPUT_BYTES", "Finding", "Severity", "format_findings", "lint_request", "sdk_model_ids"]

#: The largest request body ``labkit lint`` reads (the API itself refuses far smaller ones).
MAX_INPUT_BYTES = 64 * 2**20
#: Prompts longer than this (in characters) are counted in chunks, stopping once past the context window.
EXACT_CHARS = 1_000_000
CHUNK_CHARS = 1_000_000
MAX_MODEL_ID = 200

Severity = Literal["error", "warning", "info"]
_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}
SAMPLING = ("temperature", "top_p", "logprobs", "top_logprobs", "frequency_penalty", "presence_penalty")
_DEFAULTS: dict[str, Any] = {"temperature": 1, "top_p": 1, "frequency_penalty": 0, "presence_penalty": 0,
                             "logprobs": False, "top_logprobs": None}


@dataclass(frozen=True)
class Finding:
    """One problem with a request: a stable ``code``, its ``severity`` and what to do."""

    code: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.code}: {self.message}"


def sdk_model_ids() -> frozenset[str]:
    """The model ids in the installed SDK's ``ChatModel`` literal."""
    from typing import get_args

    from openai.types.shared.chat_model import ChatModel

    return frozenset(get_args(ChatModel))


def _changed(name: str, params: Mapping[str, Any]) -> bool:
    value = params.get(name)
    return value is not None and value != _DEFAULTS[name]


def _nested(params: Mapping[str, Any], outer: str, inner: str) -> Any:
    block = params.get(outer)
    return block.get(inner) if isinstance(block, Mapping) else None


def _output_limit(params: Mapping[str, Any]) -> tuple[str, int] | None:
    for name in ("max_completion_tokens", "max_output_tokens", "max_tokens"):
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return name, value
    return None


def _strings(value: Any) -> Iterable[str]:
    """Every string inside a JSON-like value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def _prompt_tokens(params: Mapping[str, Any], model: str, stop_at: int | None = None) -> int | None:
    """The prompt's tokens; for a huge prompt, counted in chunks and only until past ``stop_at`` (bounded work)."""
    from labkit.tokens import TokenizerDataError, count_tokens, encoding_for

    prompt = params.get("messages")
    if prompt is None:
        prompt = params.get("input")
    if prompt is None:
        return None
    size = sum(len(t) for t in _strings([prompt, params.get("instructions")]))
    if size > EXACT_CHARS:
        try:
            enc = encoding_for(model)
        except (TokenizerDataError, ValueError, KeyError):
            return None
        total = 0
        for text in _strings([prompt, params.get("instructions")]):
            for start in range(0, len(text), CHUNK_CHARS):
                total += len(enc.encode(text[start:start + CHUNK_CHARS], disallowed_special=()))
                if stop_at is not None and total > stop_at:
                    return total
        return total
    try:
        total = count_tokens(prompt, model)
        instructions = params.get("instructions")
        if isinstance(instructions, str):
            total += count_tokens(instructions, model)
    except (TokenizerDataError, TypeError, ValueError):
        return None
    return total


def _may_be_long(params: Mapping[str, Any], info: ModelInfo, limit: int) -> bool:
    """Whether the prompt could reach the context window or the long-context threshold.

    Every token is at least one byte, so the prompt's JSON size bounds its token count: short
    prompts (nearly all) skip the tokenizer, whose first load takes a noticeable fraction of a second.
    """
    if info.context_window is None and not info.long_context_above:
        return False
    parts = [params.get(name) for name in ("messages", "input", "instructions")]
    bound = 64 + sum(len(json.dumps(p, ensure_ascii=False, default=str).encode()) for p in parts if p is not None)
    over_window = info.context_window is not None and bound + limit > info.context_window
    return over_window or bool(info.long_context_above and bound > info.long_context_above)


def _lifecycle(info: ModelInfo, model: str, today: datetime.date) -> list[Finding]:
    state = info.lifecycle(today)
    instead = f"use {info.replacement}" if info.replacement else "pick a current model"
    if state == "shutdown":
        when = f" on {info.shutdown_date}" if info.shutdown_date else ""
        return [Finding("model-shut-down", "error",
                        f"{model} was shut down{when}: the API answers 404 model_not_found. {instead.capitalize()} "
                        "(change the model's role in one place).")]
    if state == "deprecated":
        left = info.days_left(today)
        return [Finding("model-deprecated", "warning",
                        f"{model} shuts down on {info.shutdown_date} ({left} days from {today.isoformat()}): "
                        f"{instead} before then.")]
    return []


def _sampling(info: ModelInfo, model: str, params: Mapping[str, Any], effort: str | None) -> list[Finding]:
    found: list[Finding] = []
    sent = [name for name in SAMPLING if _changed(name, params)]
    if sent and not info.accepts_sampling(effort):
        names = ", ".join(sent)
        if info.sampling == "effort-none":
            why = (f"{model} accepts {names} only with reasoning effort 'none' (this request runs at "
                   f"{info.effective_effort(effort)!r}): send reasoning_effort='none', or remove {names} "
                   "and steer with reasoning effort and verbosity.")
        else:
            why = (f"{model} is a reasoning model and rejects {names} (400 unsupported_parameter): remove "
                   f"{names} and steer with reasoning effort and verbosity, or use a model whose role allows "
                   "sampling at effort none.")
        found.append(Finding("sampling-unsupported", "error", why))
    temperature, top_p = params.get("temperature"), params.get("top_p")
    if isinstance(temperature, (int, float)) and not 0 <= temperature <= 2:
        found.append(Finding("sampling-out-of-range", "error", f"temperature={temperature} is outside 0 to 2."))
    if isinstance(top_p, (int, float)) and not 0 <= top_p <= 1:
        found.append(Finding("sampling-out-of-range", "error", f"top_p={top_p} is outside 0 to 1."))
    if _changed("temperature", params) and _changed("top_p", params) and not found:
        found.append(Finding("temperature-and-top-p", "warning",
                             f"Both temperature ({temperature}) and top_p ({top_p}) are changed; change one "
                             "of them and leave the other at its default."))
    return found


def _text_of(params: Mapping[str, Any]) -> str:
    parts = [params.get("messages"), params.get("input"), params.get("instructions")]
    return json.dumps([p for p in parts if p is not None], ensure_ascii=False)


def _model_findings(info: ModelInfo, model: str, params: Mapping[str, Any], today: datetime.date) -> list[Finding]:
    found = _lifecycle(info, model, today)
    add = found.append
    chat = "messages" in params
    effort = params.get("reasoning_effort") or _nested(params, "reasoning", "effort")
    found += _sampling(info, model, params, effort)

    if "max_tokens" in params:
        if not info.accepts_max_tokens:
            add(Finding("max-tokens-unsupported", "error",
                        f"{model} rejects max_tokens: use max_completion_tokens (Chat Completions) or "
                        "max_output_tokens (Responses API). The limit covers reasoning tokens too, so "
                        "leave room beyond the visible answer."))
        else:
            add(Finding("max-tokens-deprecated", "warning",
                        "max_tokens is deprecated: use max_completion_tokens (every model accepts it; "
                        "reasoning models accept only it)."))

    verbosity = params.get("verbosity") or _nested(params, "text", "verbosity")
    if effort is not None:
        if not info.reasoning:
            add(Finding("reasoning-unsupported", "error",
                        f"{model} is not a reasoning model and rejects reasoning effort; remove it."))
        elif info.efforts and effort not in info.efforts:
            add(Finding("reasoning-unsupported", "error",
                        f"{model} accepts reasoning effort {', '.join(info.efforts)}; not {effort!r}."))
    if verbosity is not None and not info.verbosity:
        add(Finding("verbosity-unsupported", "error",
                    f"{model} rejects verbosity; remove it, and control length with the output limit or the prompt."))

    tools = params.get("tools")
    has_function_tools = isinstance(tools, list) and any(isinstance(t, Mapping) and t.get("type") == "function"
                                                          for t in tools)
    if chat and has_function_tools and not info.accepts_chat_tools(effort):
        need = ("send reasoning_effort='none', or " if info.chat_tools == "effort-none" else "")
        add(Finding("chat-tools-unsupported", "error",
                    f"{model} does not take function tools in Chat Completions at effort "
                    f"{info.effective_effort(effort)!r}: {need}use the Responses API (client.responses.create)."))

    limit = _output_limit(params)
    if limit and info.max_output is not None and limit[1] > info.max_output:
        add(Finding("max-output-exceeded", "error",
                    f"{limit[0]}={limit[1]:,} is above {model}'s maximum output of {info.max_output:,} "
                    f"tokens (the API answers 400); lower it to at most {info.max_output:,}."))
    if _may_be_long(params, info, limit[1] if limit else 0):
        prompt = _prompt_tokens(params, model, info.context_window)
        if prompt is not None and info.context_window is not None:
            wanted = prompt + (limit[1] if limit else 0)
            if wanted > info.context_window:
                asked = f" + {limit[0]}={limit[1]:,}" if limit else ""
                add(Finding("context-overflow", "error",
                            f"About {prompt:,} prompt tokens{asked} exceed {model}'s context window "
                            f"of {info.context_window:,}; shorten or split the input, lower the "
                            "output limit, or use a model with a larger window."))
        if prompt is not None and info.long_context_above and prompt > info.long_context_above:
            add(Finding("long-context-price", "info",
                        f"About {prompt:,} input tokens is over {info.long_context_above:,}: the whole request "
                        f"is billed at {info.long_context_input:g}x input and {info.long_context_output:g}x output."))
    return found


def _shape_findings(params: Mapping[str, Any]) -> list[Finding]:
    """Problems that do not depend on the model."""
    found: list[Finding] = []
    if "functions" in params or "function_call" in params:
        found.append(Finding("deprecated-functions", "warning",
                             "functions / function_call are deprecated: pass tools=[{'type': 'function', "
                             "'function': {...}}] and tool_choice (Chat Completions), or function tools in "
                             "the Responses API."))
    fmt = params.get("response_format") or _nested(params, "text", "format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_object" and "json" not in _text_of(params).lower():
        found.append(Finding("json-mode-needs-json", "error",
                             "JSON mode (json_object) needs the word 'JSON' in the messages, or the API answers "
                             "400; better, use Structured Outputs (a strict json_schema) to get your schema."))
    if params.get("stream_options") is not None and params.get("stream") is not True:
        found.append(Finding("stream-options-need-stream", "error",
                             "stream_options is only allowed with stream=True (the API answers 400)."))
    return found


def lint_request(*, today: datetime.date | None = None, **params: Any) -> list[Finding]:
    """Findings for a request's parameters, most severe first; ``[]`` when it looks fine.

    ``today`` is the day a model's lifecycle is judged on (default: the real date).
    """
    from labkit.clock import today as clock_today

    day = today or clock_today()
    found = _shape_findings(params)
    model = params.get("model")
    if isinstance(model, str) and len(model) > MAX_MODEL_ID:
        found.append(Finding("unknown-model", "warning", f"Unknown model {model[:40]!r}… ({len(model):,} characters): "
                             "a model id is a short name such as 'gpt-5-mini'."))
    elif not model or not isinstance(model, str):
        from labkit.course.models import FAST

        found.append(Finding("missing-model", "error",
                             f"No model given: pass model=..., for example {FAST!r} (name it once, by role, "
                             "in one setting)."))
    else:
        try:
            info = default_catalog().get(model)
        except UnknownModelError as exc:
            hint = f" Did you mean {', '.join(exc.suggestions)}?" if exc.suggestions else ""
            known = model in sdk_model_ids()
            where = ("The installed SDK knows it, so it is probably new: add it to your LABKIT_MODELS file "
                     "(like = 'a similar model') to get its limits and prices."
                     if known else "Neither the catalog nor the installed SDK knows it: check the spelling.")
            found.append(Finding("unknown-model", "warning", f"Unknown model {model!r}.{hint} {where}"))
        else:
            found.extend(_model_findings(info, model, params, day))
    return sorted(found, key=lambda f: _ORDER[f.severity])


def format_findings(findings: Iterable[Finding]) -> str:
    """Findings as aligned terminal lines, or a one-line all-clear."""
    items: Sequence[Finding] = sorted(findings, key=lambda f: _ORDER[f.severity])
    if not items:
        return "ok: no problems found"
    width = max(len(f.code) for f in items)
    return "\n".join(f"{f.severity:<7}  {f.code:<{width}}  {f.message}" for f in items)
