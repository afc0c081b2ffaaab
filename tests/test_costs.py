"""labkit.costs: prices from real usage objects, worked by hand."""

from __future__ import annotations

import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion
from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails
from openai.types.create_embedding_response import Usage as EmbeddingUsage
from openai.types.responses import ResponseUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from labkit.costs import Cost, cost, estimate


def chat_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=reasoning),
    )


def test_chat_usage_cached_and_reasoning_split() -> None:
    # gpt-5-mini: $0.25 in / $0.025 cached / $2.00 out per 1M
    # prompt 1,000 of which 400 cached; completion 500 of which 300 reasoning
    #   uncached 600 x 0.25 / 1M  = 0.000150
    #   cached   400 x 0.025 / 1M = 0.000010
    #   output   500 x 2.00 / 1M  = 0.001000  (reasoning 300 x 2.00 / 1M = 0.000600 of it)
    #   total                     = 0.001160
    c = cost(chat_usage(1_000, 500, cached=400, reasoning=300), "gpt-5-mini")
    assert (c.input_tokens, c.cached_tokens, c.output_tokens, c.reasoning_tokens) == (1000, 400, 500, 300)
    assert c.input_usd == pytest.approx(0.000150)
    assert c.cached_input_usd == pytest.approx(0.000010)
    assert c.output_usd == pytest.approx(0.001)
    assert c.reasoning_usd == pytest.approx(0.0006)
    assert c.total_usd == pytest.approx(0.00116)


def test_responses_usage() -> None:
    # gpt-4o: $2.50 in / $1.25 cached / $10 out per 1M
    # input 2,000 of which 1,024 cached; output 100
    #   uncached 976 x 2.50 / 1M  = 0.00244
    #   cached 1,024 x 1.25 / 1M  = 0.00128
    #   output   100 x 10 / 1M    = 0.00100
    #   total                     = 0.00472
    # (cache_write_tokens: gpt-4o charges no write fee, so writes cost what plain input costs)
    usage = ResponseUsage(
        input_tokens=2_000,
        input_tokens_details=InputTokensDetails(cached_tokens=1_024, cache_write_tokens=976),
        output_tokens=100,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        total_tokens=2_100,
    )
    c = cost(usage, "gpt-4o-2024-08-06")  # snapshot id resolves to gpt-4o prices
    assert c.input_usd == 0 and c.cache_write_usd == pytest.approx(0.00244)
    assert c.cached_input_usd == pytest.approx(0.00128)
    assert c.total_usd == pytest.approx(0.00472)


def test_batch_discount_halves_everything() -> None:
    # o3: $2 in / $8 out per 1M. 10,000 in + 2,000 out (1,500 reasoning)
    #   standard: 10,000 x 2 / 1M = 0.020 + 2,000 x 8 / 1M = 0.016 -> 0.036
    #   batch (50% off): 0.018; reasoning 1,500 x 8 / 1M x 0.5 = 0.006
    usage = chat_usage(10_000, 2_000, reasoning=1_500)
    assert cost(usage, "o3").total_usd == pytest.approx(0.036)
    batch = cost(usage, "o3", batch=True)
    assert batch.total_usd == pytest.approx(0.018)
    assert batch.reasoning_usd == pytest.approx(0.006)
    assert batch.batch and "[batch]" in str(batch)


def test_embedding_usage() -> None:
    # text-embedding-3-small: $0.02 per 1M. 5,000 tokens -> 5,000 x 0.02 / 1M = 0.0001
    c = cost(EmbeddingUsage(prompt_tokens=5_000, total_tokens=5_000), "text-embedding-3-small")
    assert (c.input_tokens, c.output_tokens) == (5_000, 0)
    assert c.total_usd == pytest.approx(0.0001)


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 100, "completion_tokens": 50},
        {"prompt_tokens": 100, "completion_tokens": 50, "prompt_tokens_details": None,
         "completion_tokens_details": None, "total_tokens": 150},
        {"input_tokens": 100, "output_tokens": 50},
        {"input_tokens": 100, "output_tokens": 50, "input_tokens_details": {"cached_tokens": 0},
         "output_tokens_details": None},
    ],
)
def test_dict_usage_with_missing_details(usage: dict) -> None:
    # gpt-4.1-mini: 100 x 0.40 / 1M = 0.00004; 50 x 1.60 / 1M = 0.00008; total 0.00012
    c = cost(usage, "gpt-4.1-mini")
    assert c.total_usd == pytest.approx(0.00012)
    assert c.cached_tokens == 0 and c.reasoning_tokens == 0


def test_whole_response_object_is_accepted() -> None:
    response = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4.1-mini-2025-04-14",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        }
    )
    assert cost(response, response.model).total_usd == pytest.approx(0.00012)


def test_estimate_matches_cost() -> None:
    # gpt-5: 1,000 in (500 cached) + 200 out:
    #   500 x 1.25 / 1M = 0.000625; 500 x 0.125 / 1M = 0.0000625; 200 x 10 / 1M = 0.002
    #   total 0.0026875
    e = estimate(1_000, 200, "gpt-5", cached_tokens=500)
    assert isinstance(e, Cost)
    assert e.total_usd == pytest.approx(0.0026875)
    assert e == cost(chat_usage(1_000, 200, cached=500), "gpt-5")


def test_str_is_one_readable_line() -> None:
    text = str(estimate(1_200, 300, "gpt-5-mini", cached_tokens=200, reasoning_tokens=128))
    assert "\n" not in text
    assert "1,200 in (200 cached)" in text and "300 out (128 reasoning)" in text and "$" in text


def test_inconsistent_usage_rejected() -> None:
    with pytest.raises(ValueError, match="Cached and written tokens are part of the input"):
        cost({"prompt_tokens": 10, "completion_tokens": 0,
              "prompt_tokens_details": {"cached_tokens": 20}}, "gpt-5")


def test_not_a_usage_object() -> None:
    with pytest.raises(TypeError, match="usage"):
        cost({"foo": 1}, "gpt-5")


def test_model_without_price_says_what_to_do(tmp_path, monkeypatch) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text('[models."no-price"]\nkind = "chat"\n')
    monkeypatch.setenv("LABKIT_MODELS", str(extra))
    with pytest.raises(ValueError, match="LABKIT_MODELS"):
        estimate(10, 10, "no-price")


def test_cache_writes_long_context_and_tiers() -> None:
    # gpt-6.1-terra: $1.00 in / $0.05 cached / $1.25 cache write / $5.00 out per 1M
    # 300,000 in (100,000 cached, 50,000 written) + 1,000 out, over 272K: input x2, output x1.5
    #   plain   150,000 x 1.00 x 2 / 1M = 0.30
    #   cached  100,000 x 0.05 x 2 / 1M = 0.01
    #   written  50,000 x 1.25 x 2 / 1M = 0.125
    #   output    1,000 x 5.00 x 1.5 / 1M = 0.0075      total 0.4425
    c = estimate(300_000, 1_000, "gpt-6.1-terra", cached_tokens=100_000, cache_write_tokens=50_000)
    assert c.long_context and c.total_usd == pytest.approx(0.4425)
    assert (c.input_usd, c.cached_input_usd, c.cache_write_usd, c.output_usd) == pytest.approx((0.30, 0.01, 0.125, 0.0075))
    assert "[long context]" in str(c) and "written to cache" in str(c)
    # exactly 272,000 input tokens is still the short rate
    assert not estimate(272_000, 0, "gpt-6.1-terra").long_context
    # 1,000 in + 1,000 out = 0.001 + 0.005 = 0.006 standard; fast x2, batch and flex x0.5
    assert estimate(1_000, 1_000, "gpt-6.1-terra").total_usd == pytest.approx(0.006)
    assert estimate(1_000, 1_000, "gpt-6.1-terra", tier="fast").total_usd == pytest.approx(0.012)
    assert estimate(1_000, 1_000, "gpt-6.1-terra", tier="priority").total_usd == pytest.approx(0.012)
    assert estimate(1_000, 1_000, "gpt-6.1-terra", tier="flex").total_usd == pytest.approx(0.003)
    assert estimate(1_000, 1_000, "gpt-6.1-terra", batch=True).total_usd == pytest.approx(0.003)
    with pytest.raises(ValueError, match="service tier"):
        estimate(1, 1, "gpt-6.1-terra", tier="turbo")


def test_free_moderation() -> None:
    assert estimate(1_000, 0, "omni-moderation-latest").total_usd == 0.0
