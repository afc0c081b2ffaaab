"""Shared fixtures: every test runs offline, in replay mode, with no key."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "cassettes" / "sources"))


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No key, replay mode, the default model catalog."""
    from labkit import catalog

    for var in ("OPENAI_API_KEY", "LABKIT_MODE", "OPENAI_BASE_URL", "REDIS_URL", "LABKIT_MODELS"):
        # set-then-delete so monkeypatch records the absence and removes anything a test leaves behind
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    catalog.clear_cache()
    monkeypatch.setenv("LABKIT_ROOT", str(ROOT))
    monkeypatch.setenv("LABKIT_NO_DOTENV", "1")  # a developer's own .env must not leak into tests
    yield
    catalog.clear_cache()


@pytest.fixture
def root() -> Path:
    return ROOT


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("LABKIT_ROOT", str(ROOT))
