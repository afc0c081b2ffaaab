"""labkit.catalog: models.toml, snapshots, user overrides, the lesson's figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit import catalog
from labkit.catalog import CatalogError, UnknownModelError, load_catalog



REQUIRED = ["gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
            "gpt-4o", "gpt-4o-mini", "o1", "o3", "o4-mini", "text-embedding-3-small",
            "text-embedding-3-large", "omni-moderation-latest"]


def test_required_models_present_and_dated() -> None:
    known = catalog.known_models()
    for model in REQUIRED:
        assert model in known
        info = catalog.get_model(model)
        assert info.as_of and info.source.startswith("https://")
        assert info.price_input is not None


@pytest.mark.parametrize(
    ("model", "prices"),
    [
        ("gpt-5", (1.25, 0.125, 10)),
        ("gpt-5-mini", (0.25, 0.025, 2)),
        ("gpt-5-nano", (0.05, 0.005, 0.40)),
        ("gpt-4.1", (2, 0.50, 8)),
        ("gpt-4.1-mini", (0.40, 0.10, 1.60)),
        ("gpt-4o", (2.50, 1.25, 10)),
        ("gpt-4o-mini", (0.15, 0.075, 0.60)),
        ("o1", (15, 7.50, 60)),
        ("o3", (2, 0.50, 8)),
    ],
)
def test_reference_prices(model: str, prices: tuple[float, float, float]) -> None:
    info = catalog.get_model(model)
    assert (info.price_input, info.price_cached_input, info.price_output) == pytest.approx(prices)
    assert info.batch_discount == 0.5


def test_reasoning_and_sampling_flags() -> None:
    mini = catalog.get_model("gpt-5-mini")
    assert mini.reasoning and not mini.accepts_temperature and not mini.accepts_max_tokens
    assert "minimal" in mini.reasoning_efforts and mini.accepts_verbosity
    sampler = catalog.get_model("gpt-4.1-mini")
    assert not sampler.reasoning and sampler.accepts_temperature and sampler.accepts_max_tokens
    assert catalog.get_model("o3").output_limit_param == "max_completion_tokens"


@pytest.mark.parametrize(
    ("snapshot", "base"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("o3-2025-04-16", "o3"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4o", "gpt-4o"),
    ],
)
def test_snapshot_resolution(snapshot: str, base: str) -> None:
    assert catalog.get_model(snapshot).id == base
    assert snapshot in catalog.default_catalog()


def test_unknown_model_lists_suggestions_and_fix() -> None:
    with pytest.raises(UnknownModelError) as info:
        catalog.get_model("gpt5-mini")
    assert isinstance(info.value, LookupError)
    assert "gpt-5-mini" in info.value.suggestions
    message = str(info.value)
    assert "gpt-5-mini" in message and "LABKIT_MODELS" in message


def test_user_override_merges_per_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[models."gpt-5-mini"]\nprice_input = 0.2\n\n'
        '[models."my-model"]\nfamily = "gpt-5"\nprice_input = 1.0\nprice_output = 3.0\n'
        "reasoning = true\naccepts_temperature = false\n"
        'output_limit_param = "max_completion_tokens"\n\n'
        '["flat-model"]\nprice_input = 0.5\n'
    )
    monkeypatch.setenv("LABKIT_MODELS", str(extra))
    mini = catalog.get_model("gpt-5-mini")
    assert mini.price_input == 0.2
    assert mini.price_output == 2.0 and mini.context_window == 400_000  # untouched fields kept
    mine = catalog.get_model("my-model")
    assert mine.reasoning and mine.price_output == 3.0 and not mine.accepts_max_tokens
    assert catalog.get_model("flat-model").price_input == 0.5
    assert str(extra) in catalog.default_catalog().sources


def test_override_typo_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[models."gpt-5"]\nprice_inptu = 1.0\n')
    with pytest.raises(CatalogError, match="price_input"):
        load_catalog(override=bad)
    bad.write_text('[models."gpt-5"]\nreasoning = "yes"\n')
    with pytest.raises(CatalogError, match="should be bool"):
        load_catalog(override=bad)


def test_missing_override_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABKIT_MODELS", str(tmp_path / "nope.toml"))
    with pytest.raises(CatalogError, match="does not exist"):
        catalog.known_models()


def test_lesson_prices_are_separate() -> None:
    assert catalog.lesson_price_per_1k("gpt-5-mini") == 0.002
    assert catalog.lesson_price_per_1k("gpt-5") == 0.06
    assert catalog.lesson_price_per_1k("o1") == 0.15
    cat = catalog.default_catalog()
    assert "not" in cat.lesson_note.lower()
    assert "lesson" not in cat.models
    # The lesson's flat $0.002/1K for gpt-5-mini is not the real per-1M input or output price.
    assert catalog.get_model("gpt-5-mini").price_input != 0.002 * 1000
    with pytest.raises(LookupError, match="labkit.costs"):
        catalog.lesson_price_per_1k("gpt-4.1-mini")


def test_retired_models_marked() -> None:
    for model in ("gpt-3.5-turbo", "text-davinci-003"):
        info = catalog.get_model(model)
        assert info.is_retired and info.replacement in catalog.known_models()


def test_default_catalog_cached() -> None:
    assert catalog.default_catalog() is catalog.default_catalog()
