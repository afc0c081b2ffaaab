"""Check a Chat Completions or Responses request before sending it.

``lint_request(**params)`` takes the keyword arguments you would pass to
``client.chat.completions.create`` or ``client.responses.create`` and returns findings for what
the API would reject (400 ``unsupported_value`` / ``unsupported_parameter``) or what wastes money.

Codes (stable):

=========================  ========  =====================================================
code                       severity  when
=========================  ========  =====================================================
missing-model              error     no ``model``
unknown-model              error     model id not in the catalog
retired-model              error     model shut down or being shut down (warning: legacy)
temperature-unsupported    error     reasoning model with temperature other than 1
top-p-unsupported          error     reasoning model with top_p other than 1
penalties-unsupported      error     reasoning model with a non-zero frequency/presence penalty
max-tokens-unsupported     error     ``max_tokens`` on a model that needs max_completion_tokens
reasoning-unsupported      error     reasoning_effort / verbosity the model does not accept
deprecated-functions       warning   ``functions`` / ``function_call``
context-overflow           error     estimated prompt + output limit over the context window
max-output-exceeded        warning   output limit above the model's max output
temperature-and-top-p      warning   both changed on a sampling model
=========================  ========  =====================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from labkit.catalog import ModelInfo, UnknownModelError, default_catalog

__all__ = ["Finding", "Severity", "format_findings", "lint_request"]

Severity = Literal["error", "warning", "info"]
_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}
SAMPLING_EXAMPLE = "gpt-4.1-mini"


@dataclass(frozen=True)
class Finding:
    """One problem with a request: a stable ``code``, its ``severity`` and what to do."""

    code: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.code}: {self.message}"


def _changed(value: Any, default: float) -> bool:
    return value is not None and value != default


def _nested(params: Mapping[str, Any], outer: str, inner: str) -> Any:
    block = params.get(outer)
    return block.get(inner) if isinstance(block, Mapping) else None


def _output_limit(params: Mapping[str, Any]) -> tuple[str, int] | None:
    for name in ("max_completion_tokens", "max_output_tokens", "max_tokens"):
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return name, value
    return None


def _prompt_tokens(params: Mapping[str, Any], model: str) -> int | None:
    from labkit.tokens import TokenizerDataError, count_tokens

    prompt = params.get("messages")
    if prompt is None:
        prompt = params.get("input")
    if prompt is None:
        return None
    try:
        total = count_tokens(prompt, model)
        instructions = params.get("instructions")
        if isinstance(instructions, str):
            total += count_tokens(instructions, model)
    except (TokenizerDataError, TypeError):
        return None
    return total


def _model_findings(info: ModelInfo, model: str, params: Mapping[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    add = found.append
    temperature, top_p = params.get("temperature"), params.get("top_p")

    if info.status == "deprecated":
        when = f" (shut down {info.shutdown})" if info.shutdown else ""
        instead = f"use {info.replacement}" if info.replacement else "pick a current model"
        add(Finding("retired-model", "error", f"{model} is retired{when}: {instead}."))
    elif info.status == "legacy":
        instead = f" such as {info.replacement}" if info.replacement else ""
        add(Finding("retired-model", "warning",
                    f"{model} is a legacy model and may be deprecated; prefer a current model{instead}."))

    if info.reasoning:
        if not info.accepts_temperature and _changed(temperature, 1):
            add(Finding("temperature-unsupported", "error",
                        f"{model} is a reasoning model and only accepts the default temperature (1); "
                        f"remove temperature={temperature}. Steer it with reasoning_effort or verbosity "
                        f"instead, or pick a sampling model such as {SAMPLING_EXAMPLE}."))
        if not info.accepts_top_p and _changed(top_p, 1):
            add(Finding("top-p-unsupported", "error",
                        f"{model} only accepts the default top_p (1); remove top_p={top_p}, or pick "
                        f"a sampling model such as {SAMPLING_EXAMPLE}."))
        if not info.accepts_penalties:
            for name in ("frequency_penalty", "presence_penalty"):
                if _changed(params.get(name), 0):
                    add(Finding("penalties-unsupported", "error",
                                f"{model} does not accept {name}; remove it, or pick a sampling "
                                f"model such as {SAMPLING_EXAMPLE}."))

    if "max_tokens" in params and not info.accepts_max_tokens:
        add(Finding("max-tokens-unsupported", "error",
                    f"{model} rejects max_tokens: use max_completion_tokens (Chat Completions) or "
                    "max_output_tokens (Responses API). The limit covers reasoning tokens too, so "
                    "leave room beyond the visible answer."))

    effort = params.get("reasoning_effort") or _nested(params, "reasoning", "effort")
    verbosity = params.get("verbosity") or _nested(params, "text", "verbosity")
    if effort is not None:
        if not info.reasoning:
            add(Finding("reasoning-unsupported", "error",
                        f"{model} is not a reasoning model and rejects reasoning_effort; remove it "
                        "(use temperature / top_p here), or pick a reasoning model such as gpt-5-mini."))
        elif info.reasoning_efforts and effort not in info.reasoning_efforts:
            add(Finding("reasoning-unsupported", "error",
                        f"{model} accepts reasoning_effort {', '.join(info.reasoning_efforts)}; "
                        f"not {effort!r}."))
    if verbosity is not None and not info.accepts_verbosity:
        add(Finding("reasoning-unsupported", "error",
                    f"{model} rejects verbosity; remove it (it exists on the GPT-5 family), and "
                    "control length with the output limit or the prompt."))

    if not info.reasoning and _changed(temperature, 1) and _changed(top_p, 1):
        add(Finding("temperature-and-top-p", "warning",
                    f"Both temperature ({temperature}) and top_p ({top_p}) are changed; change one "
                    "of them and leave the other at its default."))

    limit = _output_limit(params)
    if limit and info.max_output is not None and limit[1] > info.max_output:
        add(Finding("max-output-exceeded", "warning",
                    f"{limit[0]}={limit[1]:,} is above {model}'s maximum output of "
                    f"{info.max_output:,} tokens; lower it to at most {info.max_output:,}."))
    if info.context_window is not None:
        prompt = _prompt_tokens(params, model)
        if prompt is not None:
            wanted = prompt + (limit[1] if limit else 0)
            if wanted > info.context_window:
                asked = f" + {limit[0]}={limit[1]:,}" if limit else ""
                add(Finding("context-overflow", "error",
                            f"About {prompt:,} prompt tokens{asked} exceed {model}'s context window "
                            f"of {info.context_window:,}; shorten or split the input, lower the "
                            "output limit, or use a model with a larger window."))
    return found


def lint_request(**params: Any) -> list[Finding]:
    """Findings for a request's parameters, most severe first; ``[]`` when it looks fine."""
    found: list[Finding] = []
    if "functions" in params or "function_call" in params:
        found.append(Finding("deprecated-functions", "warning",
                             "functions / function_call are deprecated: pass tools=[{'type': "
                             "'function', 'function': {...}}] and tool_choice instead."))
    model = params.get("model")
    if not model or not isinstance(model, str):
        found.append(Finding("missing-model", "error",
                             "No model given: pass model=..., for example 'gpt-4.1-mini' or "
                             "'gpt-5-mini' (name it once, in one setting)."))
    else:
        catalog = default_catalog()
        try:
            info = catalog.get(model)
        except UnknownModelError as exc:
            hint = f" Did you mean {', '.join(exc.suggestions)}?" if exc.suggestions else ""
            found.append(Finding("unknown-model", "error",
                                 f"Unknown model {model!r}.{hint} Check the id, or add it to your "
                                 "LABKIT_MODELS file if it is new."))
        else:
            found.extend(_model_findings(info, model, params))
    return sorted(found, key=lambda f: _ORDER[f.severity])


def format_findings(findings: Iterable[Finding]) -> str:
    """Findings as aligned terminal lines, or a one-line all-clear."""
    items: Sequence[Finding] = sorted(findings, key=lambda f: _ORDER[f.severity])
    if not items:
        return "ok: no problems found"
    width = max(len(f.code) for f in items)
    return "\n".join(f"{f.severity:<7}  {f.code:<{width}}  {f.message}" for f in items)
