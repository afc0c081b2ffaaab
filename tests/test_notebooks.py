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


def test_kernel_clock_profile_moves_only_pythons_wall_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nbval's kernels read a date months ahead, and a timed wait still times out on time."""
    from nbclient import NotebookClient

    from labkit.notebooks import kernel_clock_profile

    monkeypatch.setenv("IPYTHONDIR", str(kernel_clock_profile("2027-07-15T09:30:00+00:00", tmp_path / "ipython")))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import datetime, threading, time\n"
        "start = time.monotonic(); threading.Event().wait(0.2); waited = time.monotonic() - start\n"
        "print(datetime.date.today(), time.strftime('%Y'), 0.15 < waited < 5)"
    )])
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    assert nb.cells[0].outputs[0]["text"] == "2027-07-15 2027 True\n"


def test_kernel_clock_profile_refuses_a_malformed_date(tmp_path: Path) -> None:
    from labkit.notebooks import kernel_clock_profile

    with pytest.raises(ValueError):
        kernel_clock_profile("next summer", tmp_path)
