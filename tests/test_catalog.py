"""labkit.catalog: the December 2026 line-up, lifecycles, snapshots, overrides, the lesson's figures."""

from __future__ import annotations

import ast
import datetime
import re
from pathlib import Path

import openai
import pytest

from labkit import catalog
from labkit.catalog import CatalogError, UnknownModelError, load_catalog
from labkit.course import models as roles

DAY = datetime.date(2026, 12, 1)
CURRENT = ["gpt-6.2-astra", "gpt-6.2-sol", "gpt-6-astra", "gpt-6.1-sol", "gpt-6.1-terra", "gpt-6-sol", "gpt-6-luna"]
RETIRING = ["gpt-5", "gpt-5-mini", "gpt-5-nano", "o3", "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"]
SHUT_DOWN = ["o1", "o4-mini", "gpt-4.1-nano", "gpt-3.5-turbo", "gpt-4"]


def test_every_model_is_dated_and_sourced() -> None:
    for model in catalog.known_models():
        info = catalog.get_model(model)
        assert info.as_of and info.source, model
        assert info.price_input is not None and info.price_output is not None, model


@pytest.mark.parametrize(
    ("model", "prices"),
    [  # input, cached input, cache write (30 min), output: USD per 1M tokens
        ("gpt-6.2-sol", (2.00, 0.10, 2.50, 10.00)),
        ("gpt-6.1-terra", (1.00, 0.05, 1.25, 5.00)),
        ("gpt-6-luna", (0.10, 0.01, 0.125, 0.50)),
        ("gpt-6-sol", (2.00, 0.20, 2.50, 10.00)),
        ("gpt-5-mini", (0.25, 0.025, 0.25, 2.00)),
        ("gpt-4.1-mini", (0.40, 0.10, 0.40, 1.60)),
        ("o1", (15, 7.50, 15, 60)),
    ],
)
def test_reference_prices(model: str, prices: tuple[float, float, float, float]) -> None:
    info = catalog.get_model(model)
    assert (info.price_input, info.price_cached_input, info.price_cache_write, info.price_output) == pytest.approx(prices)
    assert info.batch_discount == 0.5


def test_lifecycles_on_the_first_of_december() -> None:
    for model in CURRENT:
        assert catalog.get_model(model).lifecycle(DAY) == "active", model
    for model in RETIRING:
        info = catalog.get_model(model)
        assert info.lifecycle(DAY) == "deprecated" and info.replacement in catalog.known_models(), model
    for model in SHUT_DOWN:
        info = catalog.get_model(model)
        assert info.lifecycle(DAY) == "shutdown" and info.replacement in catalog.known_models(), model
    assert catalog.get_model("gpt-5").lifecycle(datetime.date(2026, 12, 11)) == "shutdown"
    assert catalog.get_model("gpt-4o").days_left(DAY) == 44


def test_efforts_and_sampling() -> None:
    terra, sol, luna = (catalog.get_model(m) for m in ("gpt-6.1-terra", "gpt-6.1-sol", "gpt-6-luna"))
    assert terra.default_effort == "medium" and "none" in terra.efforts and "max" in terra.efforts
    assert terra.accepts_sampling("none") and not terra.accepts_sampling(None) and not terra.accepts_sampling("low")
    assert "none" not in sol.efforts and not sol.accepts_sampling("none")
    assert luna.accepts_chat_tools("none") and not luna.accepts_chat_tools("medium")
    assert not terra.accepts_chat_tools("none")  # tool calling needs the Responses API
    sampler = catalog.get_model("gpt-4.1")
    assert not sampler.reasoning and sampler.accepts_sampling() and sampler.accepts_max_tokens
    assert not catalog.get_model("gpt-5").accepts_max_tokens


def test_price_modifiers() -> None:
    sol = catalog.get_model("gpt-6.2-sol")
    assert (sol.long_context_above, sol.long_context_input, sol.long_context_output) == (272_000, 2.0, 1.5)
    assert sol.fast_multiplier == 2.0 and not sol.flex and catalog.get_model("gpt-6.1-terra").flex
    assert sol.price_cache_write_12h == 5.00


@pytest.mark.parametrize(
    ("snapshot", "base"),
    [("gpt-4o-2024-08-06", "gpt-4o"), ("gpt-5-mini-2025-08-07", "gpt-5-mini"), ("o3-2025-04-16", "o3"),
     ("gpt-4-0613", "gpt-4"), ("gpt-6.1-terra", "gpt-6.1-terra")],
)
def test_snapshot_resolution(snapshot: str, base: str) -> None:
    assert catalog.get_model(snapshot).id == base
    assert snapshot in catalog.default_catalog()


def test_unknown_model_lists_suggestions_and_fix() -> None:
    with pytest.raises(UnknownModelError) as info:
        catalog.get_model("gpt6-luna")
    assert isinstance(info.value, LookupError)
    assert "gpt-6-luna" in info.value.suggestions
    assert "LABKIT_MODELS" in str(info.value)


def test_user_override_merges_per_field_and_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[models."gpt-6.1-terra"]\nprice_input = 0.9\n\n'
        '[models."gpt-7-luna"]\nlike = "gpt-6-luna"\nreleased = 2027-03-01\nprice_output = 0.4\n\n'
        '["flat-model"]\nlike = "gpt-4.1"\nprice_input = 0.5\n'
    )
    monkeypatch.setenv("LABKIT_MODELS", str(extra))
    terra = catalog.get_model("gpt-6.1-terra")
    assert terra.price_input == 0.9 and terra.price_output == 5.0  # untouched fields kept
    new = catalog.get_model("gpt-7-luna")
    assert new.price_output == 0.4 and new.price_input == 0.10 and new.released == "2027-03-01"
    assert new.accepts_sampling("none")
    assert catalog.get_model("flat-model").price_input == 0.5
    assert str(extra) in catalog.default_catalog().sources


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[models."gpt-5"]\nprice_inptu = 1.0\n', "price_input"),
        ('[models."gpt-5"]\nreasoning = "yes"\n', "should be bool"),
        ('[models."gpt-5"]\nprice_input = -1.0\n', "zero or more"),
        ('[models."gpt-5"]\nprice_output = nan\n', "finite"),
        ('[models."gpt-5"]\nprice_output = inf\n', "finite"),
        ('[models."gpt-5"]\ncontext_window = -1\n', "positive"),
        ('[models."gpt-5"]\nefforts = ["turbo"]\n', "efforts must be among"),
        ('[models."gpt-5"]\ndefault_effort = "none"\n', "not among its efforts"),
        ('[models."gpt-5"]\nshutdown_date = "soon"\n', "must be a date"),
        ('[models."x"]\nlike = "nothing-like-it"\n', "does not have"),
        ('[models."a"]\nlike = "b"\n[models."b"]\nlike = "a"\n', "circle"),
        ('[models."gpt-6-luna"]\nshutdown_date = 2027-09-01\n', "status is 'deprecated'"),
        ("models = 3\n", "table of tables"),
        ('[models."gpt-5"\n', "not valid"),
    ],
)
def test_bad_override_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(CatalogError, match=message):
        load_catalog(override=bad)


def test_unreadable_override_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_MODELS", str(tmp_path / "nope.toml"))
    with pytest.raises(CatalogError, match="does not exist"):
        catalog.known_models()
    with pytest.raises(CatalogError, match="is a folder"):
        load_catalog(override=tmp_path)
    utf16 = tmp_path / "utf16.toml"
    utf16.write_text('[models."gpt-5"]\nprice_input = 1.0\n', encoding="utf-16")
    with pytest.raises(CatalogError, match="UTF-8"):
        load_catalog(override=utf16)


def test_lesson_prices_are_separate() -> None:
    assert catalog.lesson_price_per_1k("gpt-5-mini") == 0.002
    assert catalog.lesson_price_per_1k("gpt-5") == 0.06
    assert catalog.lesson_price_per_1k("o1") == 0.15
    cat = catalog.default_catalog()
    assert "not" in cat.lesson_note.lower()
    assert catalog.get_model("gpt-5-mini").price_input != 0.002 * 1000
    with pytest.raises(LookupError, match="labkit.costs"):
        catalog.lesson_price_per_1k("gpt-6-luna")


def test_default_catalog_cached() -> None:
    assert catalog.default_catalog() is catalog.default_catalog()


def test_every_role_names_a_catalog_model() -> None:
    for role, model in {**roles.ROLES, **roles.LESSON}.items():
        assert model in catalog.default_catalog(), role


# --------------------------------------------------------------------------- drift guard (offline)


def sdk_shutdown_dates() -> dict[str, str]:
    """Model id -> announced shutdown date, read from the installed SDK's ChatModel docstring."""
    source = Path(openai.__file__).parent / "types" / "shared" / "chat_model.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    doc = next(node.value.value for node in tree.body
               if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and "shutdown" in str(node.value.value))
    dates: dict[str, str] = {}
    for item in re.split(r"\n- ", doc):
        when = re.search(r"shutdown date:\s*(\d{4}-\d{2}-\d{2})", item.replace("\n", " "))
        if when:
            for model in re.findall(r'"([^"]+)"', item):
                dates[model] = when.group(1)
    return dates


def test_catalog_dates_match_the_sdk() -> None:
    sdk = sdk_shutdown_dates()
    assert len(sdk) > 30, "the SDK's ChatModel docstring changed shape; update this parser"
    cat = catalog.default_catalog()
    checked = 0
    for model, date in sdk.items():
        if model in cat.models:
            assert cat.models[model].shutdown_date == date, f"{model}: catalog {cat.models[model].shutdown_date}, SDK {date}"
            checked += 1
    assert checked >= 15
    for model, info in cat.models.items():
        if info.kind == "chat" and model in sdk:
            assert info.lifecycle(DAY) != "active", f"the SDK announces a shutdown of {model}; the catalog says active"
