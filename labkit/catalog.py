"""The model catalog: limits, accepted parameters and prices, from ``models.toml``.

The packaged ``models.toml`` is the default. Point ``LABKIT_MODELS`` at your own TOML file to
override fields of known models or add new ones (same ``[models."id"]`` tables; top-level
``["id"]`` tables are accepted too). Dated snapshot ids such as ``gpt-4o-2024-08-06`` resolve
to their base id.
"""

from __future__ import annotations

import datetime
import difflib
import math
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
Status = Literal["active", "deprecated", "shutdown"]
Sampling = Literal["always", "never", "effort-none"]
ChatTools = Literal["yes", "effort-none", "no"]
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
#: How close to its shutdown date a model the course uses makes ``labkit doctor`` fail.
WARN_DAYS = 60

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
            f'[models."{model_id}"] table (like = "<a known model>", then what differs) to a TOML '
            f"file and point {ENV_VAR} at it."
        )

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ModelInfo:
    """One model's lifecycle, limits, parameters and prices (USD per 1M tokens)."""

    id: str
    kind: Kind = "chat"
    family: str = ""
    encoding: str = "o200k_base"
    status: Status = "active"
    released: str | None = None
    shutdown_date: str | None = None
    replacement: str | None = None
    context_window: int | None = None
    max_output: int | None = None
    price_input: float | None = None
    price_cached_input: float | None = None
    price_cache_write: float | None = None
    price_cache_write_12h: float | None = None
    price_output: float | None = None
    long_context_above: int = 0
    long_context_input: float = 1.0
    long_context_output: float = 1.0
    batch_discount: float = 0.5
    flex: bool = False
    fast_multiplier: float | None = None
    reasoning: bool = False
    efforts: tuple[str, ...] = ()
    default_effort: str = ""
    sampling: Sampling = "always"
    accepts_max_tokens: bool = True
    verbosity: bool = False
    chat_tools: ChatTools = "yes"
    apis: tuple[str, ...] = ("chat", "responses", "batch")
    as_of: str = ""
    source: str = ""

    # ------------------------------------------------------------------ lifecycle
    def lifecycle(self, on: datetime.date | None = None) -> Status:
        """``active``, ``deprecated`` (shutdown announced) or ``shutdown`` on a given day (default today)."""
        from .clock import today

        day = on or today()
        if self.status == "shutdown" or (self.shutdown_date and day >= datetime.date.fromisoformat(self.shutdown_date)):
            return "shutdown"
        return "deprecated" if self.status == "deprecated" or self.shutdown_date else "active"

    def days_left(self, on: datetime.date | None = None) -> int | None:
        """Days until the shutdown date (negative once past); None if none is announced."""
        if not self.shutdown_date:
            return None
        from .clock import today

        return (datetime.date.fromisoformat(self.shutdown_date) - (on or today())).days

    # ------------------------------------------------------------------ parameters
    def effective_effort(self, effort: str | None) -> str:
        """The reasoning effort a request runs at: the one it sends, else the model's default."""
        return effort or self.default_effort

    def accepts_sampling(self, effort: str | None = None) -> bool:
        """Whether temperature / top_p / logprobs / penalties are accepted at this effort."""
        if self.sampling == "always":
            return True
        return self.sampling == "effort-none" and self.effective_effort(effort) == "none"

    def accepts_chat_tools(self, effort: str | None = None) -> bool:
        """Whether function tools work in Chat Completions at this effort (else: Responses API)."""
        if self.chat_tools == "yes":
            return True
        return self.chat_tools == "effort-none" and self.effective_effort(effort) == "none"

    @property
    def accepts_temperature(self) -> bool:
        """Temperature is accepted with the model's default settings."""
        return self.accepts_sampling(None)

    @property
    def reasoning_efforts(self) -> tuple[str, ...]:
        return self.efforts

    @property
    def output_limit_param(self) -> str:
        """The Chat Completions output limit every model accepts (``max_tokens`` is deprecated)."""
        return "max_completion_tokens"


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "family": (str,),
    "encoding": (str,),
    "status": (str,),
    "released": (str, datetime.date),
    "shutdown_date": (str, datetime.date),
    "replacement": (str,),
    "context_window": (int,),
    "max_output": (int,),
    "price_input": (int, float),
    "price_cached_input": (int, float),
    "price_cache_write": (int, float),
    "price_cache_write_12h": (int, float),
    "price_output": (int, float),
    "long_context_above": (int,),
    "long_context_input": (int, float),
    "long_context_output": (int, float),
    "batch_discount": (int, float),
    "flex": (bool,),
    "fast_multiplier": (int, float),
    "reasoning": (bool,),
    "efforts": (list,),
    "default_effort": (str,),
    "sampling": (str,),
    "accepts_max_tokens": (bool,),
    "verbosity": (bool,),
    "chat_tools": (str,),
    "apis": (list,),
    "as_of": (str, datetime.date),
    "source": (str,),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "kind": ("chat", "embedding", "moderation"),
    "status": ("active", "deprecated", "shutdown"),
    "sampling": ("always", "never", "effort-none"),
    "chat_tools": ("yes", "effort-none", "no"),
    "default_effort": ("", *EFFORTS),
}
_PRICES = ("price_input", "price_cached_input", "price_cache_write", "price_cache_write_12h", "price_output")
_NON_NEGATIVE = (*_PRICES, "long_context_above", "max_output")
_POSITIVE = ("context_window", "long_context_input", "long_context_output", "fast_multiplier")
assert set(_FIELD_TYPES) == {f.name for f in fields(ModelInfo)} - {"id"}


def _check_fields(model_id: str, table: Mapping[str, Any], origin: str) -> None:
    for key, value in table.items():
        if key == "like":
            if not isinstance(value, str):
                raise CatalogError(f"{origin}: model {model_id!r}: `like` names another model, got {value!r}.")
            continue
        if key not in _FIELD_TYPES:
            close = difflib.get_close_matches(key, [*_FIELD_TYPES, "like"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CatalogError(f"{origin}: model {model_id!r} has an unknown field {key!r}{hint}.")
        expected = _FIELD_TYPES[key]
        if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
            names = " or ".join(t.__name__ for t in expected)
            raise CatalogError(f"{origin}: model {model_id!r} field {key!r} should be {names}, got {value!r}.")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise CatalogError(f"{origin}: model {model_id!r} field {key!r} must be one of "
                               f"{', '.join(repr(c) for c in _CHOICES[key])}; got {value!r}.")
        if isinstance(value, float) and not math.isfinite(value):
            raise CatalogError(f"{origin}: model {model_id!r} field {key!r} must be a finite number, got {value!r}.")
        # The numeric and list fields have passed the type check above; the isinstance tests only tell mypy so.
        if isinstance(value, (int, float)) and (key in _NON_NEGATIVE and value < 0 or key in _POSITIVE and value <= 0):
            sign = "positive" if key in _POSITIVE else "zero or more"
            raise CatalogError(f"{origin}: model {model_id!r} field {key!r} must be {sign}, got {value!r}.")
        if key == "batch_discount" and isinstance(value, (int, float)) and not 0 <= value < 1:
            raise CatalogError(f"{origin}: model {model_id!r}: batch_discount is a fraction from 0 to 1, got {value!r}.")
        if key == "efforts" and isinstance(value, list) and any(e not in EFFORTS for e in value):
            raise CatalogError(f"{origin}: model {model_id!r}: efforts must be among {', '.join(EFFORTS)}; got {value!r}.")
        if key in ("released", "shutdown_date", "as_of") and isinstance(value, str):
            try:
                datetime.date.fromisoformat(value)
            except ValueError:
                raise CatalogError(f"{origin}: model {model_id!r} field {key!r} must be a date like 2026-12-01, "
                                   f"got {value!r}.") from None


def _resolve_like(tables: dict[str, dict[str, Any]], origin: str) -> dict[str, dict[str, Any]]:
    """Expand ``like = "other"``: the other model's fields first, then this table's."""
    done: dict[str, dict[str, Any]] = {}

    def expand(model_id: str, chain: tuple[str, ...]) -> dict[str, Any]:
        if model_id in done:
            return done[model_id]
        table = dict(tables[model_id])
        parent = table.pop("like", None)
        if parent is not None:
            if parent in chain:
                raise CatalogError(f"{origin}: `like` goes round in a circle: {' -> '.join((*chain, parent))}.")
            if parent not in tables:
                raise CatalogError(f"{origin}: model {model_id!r} is like {parent!r}, which the catalog does not have.")
            table = {**expand(parent, (*chain, parent)), **table}
        done[model_id] = table
        return table

    return {model_id: expand(model_id, (model_id,)) for model_id in tables}


def _build(model_id: str, table: Mapping[str, Any], origin: str) -> ModelInfo:
    values = dict(table)
    for key in ("released", "shutdown_date", "as_of"):
        if isinstance(values.get(key), datetime.date):
            values[key] = values[key].isoformat()
    for key in ("efforts", "apis"):
        if key in values:
            values[key] = tuple(str(e) for e in values[key])
    for key in (*_PRICES, "long_context_input", "long_context_output", "batch_discount", "fast_multiplier"):
        if key in values:
            values[key] = float(values[key])
    if not values.get("family"):
        values["family"] = model_id
    info = ModelInfo(id=model_id, **values)
    if info.default_effort and info.default_effort not in info.efforts:
        raise CatalogError(f"{origin}: model {model_id!r}: default_effort {info.default_effort!r} is not among "
                           f"its efforts {list(info.efforts)}.")
    if info.status == "active" and info.shutdown_date:
        raise CatalogError(f"{origin}: model {model_id!r} has a shutdown_date, so its status is 'deprecated', not 'active'.")
    return info


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
    except IsADirectoryError:
        raise CatalogError(f"{origin}: {path} is a folder; point it at a TOML file.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{origin}: {path} is not valid UTF-8 TOML ({exc}).") from None
    except OSError as exc:
        raise CatalogError(f"{origin}: {path} cannot be read ({exc.strerror}).") from None


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

    tables = _resolve_like(tables, " + ".join(sources))
    models = {model_id: _build(model_id, table, " + ".join(sources)) for model_id, table in tables.items()}
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
