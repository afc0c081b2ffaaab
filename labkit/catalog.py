"""The model catalog: limits, accepted parameters and prices, from ``models.toml``.

The packaged ``models.toml`` is the default. Point ``LABKIT_MODELS`` at your own TOML file to
override fields of known models or add new ones (same ``[models."id"]`` tables; top-level
``["id"]`` tables are accepted too). Dated snapshot ids such as ``gpt-4o-2024-08-06`` resolve
to their base id.
"""

from __future__ import annotations

import datetime
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from .errors import CatalogError, LabkitError

__all__ = [
    "Catalog",
    "CatalogError",
    "ModelInfo",
    "NoLessonPrice",
    "UnknownModelError",
    "base_id",
    "clear_cache",
    "default_catalog",
    "get_model",
    "known_models",
    "lesson_price_per_1k",
    "load_catalog",
]

DEFAULT_PATH = Path(__file__).with_name("models.toml")
ENV_VAR = "LABKIT_MODELS"

Kind = Literal["chat", "embedding", "moderation"]
Status = Literal["current", "legacy", "deprecated"]
OutputLimitParam = Literal["max_tokens", "max_completion_tokens"]

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")


class NoLessonPrice(LabkitError, LookupError):
    """The lesson states no illustrative per-1K price for that model."""


class UnknownModelError(LabkitError, LookupError):
    """The model id is not in the catalog."""

    def __init__(self, model_id: str, suggestions: list[str]) -> None:
        self.model_id = model_id
        self.suggestions = suggestions
        hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(
            f"Unknown model {model_id!r}.{hint} To use a model labkit does not know yet, add a "
            f'[models."{model_id}"] table (family, price_input, price_output, ...) to a TOML '
            f"file and point {ENV_VAR} at it."
        )

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ModelInfo:
    """One model's limits, parameters and prices (USD per 1M tokens)."""

    id: str
    family: str = ""
    encoding: str = "o200k_base"
    context_window: int | None = None
    max_output: int | None = None
    price_input: float | None = None
    price_cached_input: float | None = None
    price_output: float | None = None
    batch_discount: float = 0.5
    accepts_temperature: bool = True
    accepts_top_p: bool = True
    accepts_penalties: bool = True
    output_limit_param: OutputLimitParam | None = "max_tokens"
    reasoning: bool = False
    reasoning_efforts: tuple[str, ...] = ()
    accepts_verbosity: bool = False
    kind: Kind = "chat"
    status: Status = "current"
    as_of: str = ""
    source: str = ""
    replacement: str | None = None
    shutdown: str | None = None

    @property
    def accepts_max_tokens(self) -> bool:
        """Whether Chat Completions accepts ``max_tokens`` (reasoning models reject it)."""
        return self.output_limit_param != "max_completion_tokens"

    @property
    def is_retired(self) -> bool:
        return self.status == "deprecated"


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "family": (str,),
    "encoding": (str,),
    "context_window": (int,),
    "max_output": (int,),
    "price_input": (int, float),
    "price_cached_input": (int, float),
    "price_output": (int, float),
    "batch_discount": (int, float),
    "accepts_temperature": (bool,),
    "accepts_top_p": (bool,),
    "accepts_penalties": (bool,),
    "output_limit_param": (str,),
    "reasoning": (bool,),
    "reasoning_efforts": (list,),
    "accepts_verbosity": (bool,),
    "kind": (str,),
    "status": (str,),
    "as_of": (str, datetime.date),
    "source": (str,),
    "replacement": (str,),
    "shutdown": (str, datetime.date),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "kind": ("chat", "embedding", "moderation"),
    "status": ("current", "legacy", "deprecated"),
    "output_limit_param": ("max_tokens", "max_completion_tokens"),
}
assert set(_FIELD_TYPES) == {f.name for f in fields(ModelInfo)} - {"id"}


def _check_fields(model_id: str, table: Mapping[str, Any], origin: str) -> None:
    for key, value in table.items():
        if key not in _FIELD_TYPES:
            close = difflib.get_close_matches(key, _FIELD_TYPES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CatalogError(f"{origin}: model {model_id!r} has an unknown field {key!r}{hint}.")
        expected = _FIELD_TYPES[key]
        if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
            names = " or ".join(t.__name__ for t in expected)
            raise CatalogError(
                f"{origin}: model {model_id!r} field {key!r} should be {names}, got {value!r}."
            )
        if key in _CHOICES and value not in _CHOICES[key]:
            raise CatalogError(
                f"{origin}: model {model_id!r} field {key!r} must be one of "
                f"{', '.join(_CHOICES[key])}; got {value!r}."
            )


def _build(model_id: str, table: Mapping[str, Any]) -> ModelInfo:
    values = dict(table)
    for key in ("as_of", "shutdown"):
        if isinstance(values.get(key), datetime.date):
            values[key] = values[key].isoformat()
    if "reasoning_efforts" in values:
        values["reasoning_efforts"] = tuple(str(e) for e in values["reasoning_efforts"])
    for key in ("price_input", "price_cached_input", "price_output", "batch_discount"):
        if key in values:
            values[key] = float(values[key])
    if not values.get("family"):
        values["family"] = model_id
    return ModelInfo(id=model_id, **values)


def base_id(model_id: str) -> str:
    """Strip a snapshot suffix: ``gpt-4o-2024-08-06`` -> ``gpt-4o``, ``gpt-4-0613`` -> ``gpt-4``."""
    return _SNAPSHOT.sub("", model_id)


@dataclass(frozen=True)
class Catalog:
    """Models by id, plus the lesson's illustrative per-1K prices (kept apart)."""

    models: Mapping[str, ModelInfo]
    lesson_prices_per_1k: Mapping[str, float] = field(default_factory=dict)
    lesson_note: str = ""
    sources: tuple[str, ...] = ()

    def resolve(self, model_id: str) -> str:
        """The catalog id for ``model_id`` (exact, else without its snapshot suffix)."""
        if model_id in self.models:
            return model_id
        base = base_id(model_id)
        if base in self.models:
            return base
        raise UnknownModelError(model_id, self.suggest(model_id))

    def get(self, model_id: str) -> ModelInfo:
        """The :class:`ModelInfo` for ``model_id``; raises :class:`UnknownModelError`."""
        return self.models[self.resolve(model_id)]

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and (
            model_id in self.models or base_id(model_id) in self.models
        )

    def suggest(self, model_id: str, n: int = 3) -> list[str]:
        """Close known ids, for error messages."""
        return difflib.get_close_matches(base_id(model_id), list(self.models), n=n, cutoff=0.5)

    def known(self) -> list[str]:
        return sorted(self.models)

    def lesson_price_per_1k(self, model_id: str) -> float:
        """The lesson's illustrative USD per 1K tokens (NOT a real price)."""
        for key in (model_id, base_id(model_id)):
            if key in self.lesson_prices_per_1k:
                return self.lesson_prices_per_1k[key]
        stated = ", ".join(sorted(self.lesson_prices_per_1k)) or "none"
        raise NoLessonPrice(
            f"The lesson states no per-1K price for {model_id!r} (it states: {stated}). "
            "For real costs use labkit.costs.cost(usage, model)."
        )


def _read_toml(path: Path, origin: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise CatalogError(f"{origin}: {path} does not exist. Fix the path or unset it.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin}: {path} is not valid TOML ({exc}).") from exc


def _model_tables(doc: Mapping[str, Any], origin: str) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    nested = doc.get("models", {})
    if not isinstance(nested, Mapping):
        raise CatalogError(f'{origin}: "models" must be a table of tables.')
    flat = {k: v for k, v in doc.items() if k not in ("models", "lesson")}
    for model_id, table in [*nested.items(), *flat.items()]:
        if not isinstance(table, Mapping):
            raise CatalogError(
                f'{origin}: {model_id!r} must be a table, e.g. [models."{model_id}"].'
            )
        _check_fields(model_id, table, origin)
        tables.setdefault(model_id, {}).update(table)
    return tables


def load_catalog(
    path: str | Path | None = None, *, override: str | Path | None | Literal["env"] = "env"
) -> Catalog:
    """Load the catalog from ``path`` (default: the packaged ``models.toml``), then merge
    ``override`` over it field by field (default: the file named by ``LABKIT_MODELS``, if
    set; ``None`` for no override). New models in the override are added."""
    base_path = Path(path) if path is not None else DEFAULT_PATH
    doc = _read_toml(base_path, str(base_path))
    tables = _model_tables(doc, str(base_path))
    lesson = doc.get("lesson", {})
    sources = [str(base_path)]

    if override == "env":
        env_value = os.environ.get(ENV_VAR)
        override = Path(env_value).expanduser() if env_value else None
        origin = f"{ENV_VAR}={env_value}"
    else:
        origin = str(override)
    if override is not None:
        extra = _read_toml(Path(override), origin)
        for model_id, table in _model_tables(extra, origin).items():
            tables.setdefault(model_id, {}).update(table)
        if isinstance(extra.get("lesson"), Mapping):
            merged = dict(lesson)
            merged.update({k: v for k, v in extra["lesson"].items() if k != "price_per_1k"})
            merged["price_per_1k"] = {
                **lesson.get("price_per_1k", {}),
                **extra["lesson"].get("price_per_1k", {}),
            }
            lesson = merged
        sources.append(str(override))

    models = {model_id: _build(model_id, table) for model_id, table in tables.items()}
    prices = {str(k): float(v) for k, v in lesson.get("price_per_1k", {}).items()}
    return Catalog(
        models=MappingProxyType(models),
        lesson_prices_per_1k=MappingProxyType(prices),
        lesson_note=str(lesson.get("note", "")),
        sources=tuple(sources),
    )


_cache: dict[str | None, Catalog] = {}


def default_catalog() -> Catalog:
    """The packaged catalog merged with ``LABKIT_MODELS``; cached per value of that variable."""
    key = os.environ.get(ENV_VAR) or None
    if key not in _cache:
        _cache[key] = load_catalog()
    return _cache[key]


def clear_cache() -> None:
    """Forget cached catalogs (after editing a ``LABKIT_MODELS`` file in place)."""
    _cache.clear()


def get_model(model_id: str) -> ModelInfo:
    """The :class:`ModelInfo` for ``model_id`` (snapshots resolve to their base id)."""
    return default_catalog().get(model_id)


def known_models() -> list[str]:
    """Every model id in the catalog, sorted."""
    return default_catalog().known()


def lesson_price_per_1k(model_id: str) -> float:
    """The lesson's illustrative USD per 1K tokens for ``model_id`` (not a real price)."""
    return default_catalog().lesson_price_per_1k(model_id)
