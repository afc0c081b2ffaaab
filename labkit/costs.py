"""What a request cost, from its real ``usage``: input, cached input, output and reasoning apart.

Cached tokens are part of the input count and billed at the cached price; reasoning tokens are
part of the output count and billed as output. Tokens written to the cache
(``cache_write_tokens``) are billed here as ordinary uncached input. Prices come from the catalog (USD per 1M tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labkit.catalog import ModelInfo, get_model

__all__ = ["Cost", "cost", "estimate", "usage_counts"]

PER = 1_000_000


@dataclass(frozen=True)
class Cost:
    """A priced request. Token counts: cached within input, reasoning within output."""

    model: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int
    input_usd: float  # uncached input only
    cached_input_usd: float
    output_usd: float  # all output, reasoning included
    reasoning_usd: float  # the part of output_usd due to reasoning (informational)
    total_usd: float
    batch: bool = False

    def __str__(self) -> str:
        cached = f" ({self.cached_tokens:,} cached)" if self.cached_tokens else ""
        reasoning = f" ({self.reasoning_tokens:,} reasoning)" if self.reasoning_tokens else ""
        batch = " [batch]" if self.batch else ""
        return (
            f"{self.model}{batch}: {self.input_tokens:,} in{cached} + "
            f"{self.output_tokens:,} out{reasoning} = {_usd(self.total_usd)} "
            f"(input {_usd(self.input_usd)}, cached {_usd(self.cached_input_usd)}, "
            f"output {_usd(self.output_usd)})"
        )


def _usd(value: float) -> str:
    if value >= 1:
        return f"${value:,.2f}"
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return f"${text}" if text != "0" or value == 0 else f"${value:.2e}"


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def usage_counts(usage: Any) -> tuple[int, int, int, int]:
    """``(input, cached, output, reasoning)`` from any usage shape.

    Accepts a Chat ``CompletionUsage``, a Responses ``ResponseUsage``, an embeddings usage,
    a plain dict of any of these, or a whole response object carrying ``.usage``. Missing or
    ``None`` details count as 0.
    """
    if _field(usage, "input_tokens") is None and _field(usage, "prompt_tokens") is None:
        inner = _field(usage, "usage")
        if inner is None:
            raise TypeError(
                "cost() needs a usage object (response.usage) with prompt_tokens or "
                f"input_tokens; got {type(usage).__name__}. Did the request return usage? "
                "For streams, pass stream_options={'include_usage': True}."
            )
        usage = inner
    if _field(usage, "input_tokens") is not None:  # Responses API
        inp = _int(_field(usage, "input_tokens"))
        out = _int(_field(usage, "output_tokens"))
        cached = _int(_field(_field(usage, "input_tokens_details"), "cached_tokens"))
        reasoning = _int(_field(_field(usage, "output_tokens_details"), "reasoning_tokens"))
    else:  # Chat Completions / embeddings
        inp = _int(_field(usage, "prompt_tokens"))
        out = _int(_field(usage, "completion_tokens"))
        cached = _int(_field(_field(usage, "prompt_tokens_details"), "cached_tokens"))
        reasoning = _int(_field(_field(usage, "completion_tokens_details"), "reasoning_tokens"))
    if not 0 <= cached <= inp or not 0 <= reasoning <= out:
        raise ValueError(
            f"Inconsistent usage: cached {cached} of {inp} input, reasoning {reasoning} of {out} "
            "output. Cached tokens are part of the input and reasoning part of the output."
        )
    return inp, cached, out, reasoning


def _price(info: ModelInfo, name: str, tokens: int) -> float:
    price = getattr(info, name)
    if price is None:
        if name == "price_cached_input" and info.price_input is not None:
            return info.price_input  # no cached rate published: billed as plain input
        if tokens == 0:
            return 0.0
        raise ValueError(
            f"No {name} for {info.id!r} in the catalog. Add it to your LABKIT_MODELS file, "
            f'e.g. [models."{info.id}"] {name} = ... (USD per 1M tokens).'
        )
    return float(price)


def _priced(
    model: str, inp: int, cached: int, out: int, reasoning: int, batch: bool
) -> Cost:
    info = get_model(model)
    factor = (1.0 - info.batch_discount) if batch else 1.0
    uncached = inp - cached
    input_usd = uncached * _price(info, "price_input", uncached) / PER * factor
    cached_usd = cached * _price(info, "price_cached_input", cached) / PER * factor
    out_price = _price(info, "price_output", out)
    output_usd = out * out_price / PER * factor
    reasoning_usd = reasoning * out_price / PER * factor
    return Cost(
        model=model,
        input_tokens=inp,
        cached_tokens=cached,
        output_tokens=out,
        reasoning_tokens=reasoning,
        input_usd=input_usd,
        cached_input_usd=cached_usd,
        output_usd=output_usd,
        reasoning_usd=reasoning_usd,
        total_usd=input_usd + cached_usd + output_usd,
        batch=batch,
    )


def cost(usage: Any, model: str, *, batch: bool = False) -> Cost:
    """Price a real ``usage`` for ``model`` (snapshot ids accepted).

    ``batch=True`` applies the model's Batch API discount to every part.
    """
    return _priced(model, *usage_counts(usage), batch)


def estimate(
    prompt_tokens: int,
    output_tokens: int,
    model: str,
    *,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    batch: bool = False,
) -> Cost:
    """Price a planned request from token counts (cached within prompt, reasoning within output)."""
    return cost(
        {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": output_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        },
        model,
        batch=batch,
    )
