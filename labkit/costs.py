"""What a request cost, from its real ``usage``: every kind of token priced apart.

Cached tokens are part of the input count and billed at the cached price; tokens written to the
cache (``cache_write_tokens``, GPT-5.6 and later) at the cache-write price; reasoning tokens are part
of the output count and billed as output. A prompt over the model's long-context threshold
(272K input tokens on GPT-5.4 and later) is billed at 2x input and 1.5x output for the whole
request. The Batch API and Flex cost half; Fast costs 2x. Prices come from the catalog (USD per
1M tokens), which says how current they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from labkit.catalog import ModelInfo, get_model

__all__ = ["Cost", "Tier", "cost", "estimate", "usage_counts"]

PER = 1_000_000
#: How a request was processed: ``service_tier`` as sent or reported, or "batch" for the Batch API.
Tier = Literal["default", "auto", "scale", "batch", "flex", "fast", "priority"]


@dataclass(frozen=True)
class Cost:
    """A priced request. Token counts: cached and cache-write within input, reasoning within output."""

    model: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int
    input_usd: float  # input neither read from nor written to the cache
    cached_input_usd: float
    output_usd: float  # all output, reasoning included
    reasoning_usd: float  # the part of output_usd due to reasoning (informational)
    total_usd: float
    batch: bool = False
    cache_write_tokens: int = 0
    cache_write_usd: float = 0.0
    tier: str = "default"
    long_context: bool = False

    def __str__(self) -> str:
        cached = f" ({self.cached_tokens:,} cached)" if self.cached_tokens else ""
        written = f" ({self.cache_write_tokens:,} written to cache)" if self.cache_write_tokens else ""
        reasoning = f" ({self.reasoning_tokens:,} reasoning)" if self.reasoning_tokens else ""
        tier = f" [{self.tier}]" if self.tier not in ("default", "auto", "scale") else ""
        longc = " [long context]" if self.long_context else ""
        parts = f"input {_usd(self.input_usd)}, cached {_usd(self.cached_input_usd)}"
        if self.cache_write_tokens:
            parts += f", cache write {_usd(self.cache_write_usd)}"
        return (
            f"{self.model}{tier}{longc}: {self.input_tokens:,} in{cached}{written} + "
            f"{self.output_tokens:,} out{reasoning} = {_usd(self.total_usd)} ({parts}, output {_usd(self.output_usd)})"
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
    """``(input, cached, output, reasoning)`` from any usage shape (see :func:`usage_details`)."""
    inp, cached, _written, out, reasoning = usage_details(usage)
    return inp, cached, out, reasoning


def usage_details(usage: Any) -> tuple[int, int, int, int, int]:
    """``(input, cached, cache_write, output, reasoning)`` from any usage shape.

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
        details = _field(usage, "input_tokens_details")
        cached = _int(_field(details, "cached_tokens"))
        written = _int(_field(details, "cache_write_tokens"))
        reasoning = _int(_field(_field(usage, "output_tokens_details"), "reasoning_tokens"))
    else:  # Chat Completions / embeddings
        inp = _int(_field(usage, "prompt_tokens"))
        out = _int(_field(usage, "completion_tokens"))
        details = _field(usage, "prompt_tokens_details")
        cached = _int(_field(details, "cached_tokens"))
        written = _int(_field(details, "cache_write_tokens"))
        reasoning = _int(_field(_field(usage, "completion_tokens_details"), "reasoning_tokens"))
    if min(inp, out, cached, written, reasoning) < 0 or cached + written > inp or reasoning > out:
        raise ValueError(
            f"Inconsistent usage: cached {cached} and cache-write {written} of {inp} input, reasoning "
            f"{reasoning} of {out} output. Cached and written tokens are part of the input, reasoning "
            "part of the output."
        )
    return inp, cached, written, out, reasoning


def _price(info: ModelInfo, name: str, tokens: int) -> float:
    price = getattr(info, name)
    if price is None:
        if name != "price_input" and name != "price_output" and info.price_input is not None:
            return info.price_input  # no separate cache rate published: billed as plain input
        if tokens == 0:
            return 0.0
        raise ValueError(
            f"No {name} for {info.id!r} in the catalog. Add it to your LABKIT_MODELS file, "
            f'e.g. [models."{info.id}"] {name} = ... (USD per 1M tokens).'
        )
    return float(price)


def _tier_factor(info: ModelInfo, tier: str) -> float:
    if tier in ("batch", "flex"):
        return 1.0 - info.batch_discount
    if tier in ("fast", "priority"):
        if info.fast_multiplier is None:
            raise ValueError(f"{info.id} offers no fast (priority) processing in the catalog; price it as default.")
        return info.fast_multiplier
    if tier in ("default", "auto", "scale"):
        return 1.0
    raise ValueError(f"Unknown service tier {tier!r}: use default, batch, flex or fast.")


def cost(usage: Any, model: str, *, batch: bool = False, tier: str | None = None) -> Cost:
    """Price a real ``usage`` for ``model`` (snapshot ids accepted).

    ``batch=True`` (or ``tier="batch"``) applies the Batch API discount; ``tier`` is the
    ``service_tier`` the response reports (``flex`` costs as batch, ``fast``/``priority`` more).
    """
    info = get_model(model)
    inp, cached, written, out, reasoning = usage_details(usage)
    chosen = "batch" if batch else (tier or "default")
    factor = _tier_factor(info, chosen)
    longc = bool(info.long_context_above) and inp > info.long_context_above
    in_x = factor * (info.long_context_input if longc else 1.0)
    out_x = factor * (info.long_context_output if longc else 1.0)
    plain = inp - cached - written
    input_usd = plain * _price(info, "price_input", plain) / PER * in_x
    cached_usd = cached * _price(info, "price_cached_input", cached) / PER * in_x
    write_usd = written * _price(info, "price_cache_write", written) / PER * in_x
    out_price = _price(info, "price_output", out)
    output_usd = out * out_price / PER * out_x
    return Cost(
        model=model, input_tokens=inp, cached_tokens=cached, output_tokens=out, reasoning_tokens=reasoning,
        input_usd=input_usd, cached_input_usd=cached_usd, output_usd=output_usd,
        reasoning_usd=reasoning * out_price / PER * out_x, total_usd=input_usd + cached_usd + write_usd + output_usd,
        batch=chosen == "batch", cache_write_tokens=written, cache_write_usd=write_usd, tier=chosen, long_context=longc,
    )


def estimate(
    prompt_tokens: int,
    output_tokens: int,
    model: str,
    *,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    batch: bool = False,
    tier: str | None = None,
) -> Cost:
    """Price a planned request from token counts (cached and written within prompt, reasoning within output)."""
    return cost(
        {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": output_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": cache_write_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        },
        model,
        batch=batch,
        tier=tier,
    )
