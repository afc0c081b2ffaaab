"""Notebooks: in sync with their sources and clean of volatile metadata (execution is nbval's job)."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from labkit.notebooks import clean, sources, stale

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_source_has_its_notebook_and_matches() -> None:
    assert sources(), "no notebook sources found"
    assert stale() == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert clean(copy.deepcopy(nb)) == nb, f"{path.name} has volatile metadata: run `make notebooks`"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.outputs:
            assert cell.execution_count is not None, f"{path.name} cell {i}: outputs without execution_count"
            assert not any(o.output_type == "error" for o in cell.outputs) or "NBVAL_RAISES_EXCEPTION" in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_the_banner_and_never_holds_a_key(path: Path) -> None:
    text = path.read_text()
    assert "labkit mode: REPLAY" in text
    assert "sk-proj-" not in text and "Bearer sk-" not in text
