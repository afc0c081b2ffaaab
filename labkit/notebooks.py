"""Build notebooks from their jupytext sources: execute, keep outputs, strip volatile metadata.

``notebooks/src/NN_topic.py`` (percent format) -> ``notebooks/NN_topic.ipynb``. The build runs
in replay mode with no key, so outputs are the recorded ones and a rebuild is reproducible.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import jupytext
import nbformat
from nbclient import NotebookClient

from . import paths

KEEP_NB_META = ("kernelspec", "language_info")
#: Set (an ISO date-time) for nbval: every kernel's Python clock starts there (see ``kernel_clock_profile``).
KERNEL_CLOCK_ENV = "LABKIT_KERNEL_CLOCK"


def src_dir() -> Path:
    return paths.course_root() / "notebooks" / "src"


def kernel_clock_profile(when: str, into: Path) -> Path:
    """An IPython folder whose startup file moves the kernel's Python clock to ``when`` (ISO 8601).

    Point ``IPYTHONDIR`` at the returned folder and every kernel started from that environment
    reads ``when`` from ``time.time``, ``datetime.now``, ``date.today``... and ticks on from there
    (``time_machine.travel(when, tick=True)``). Monotonic time, sleeps, timed lock waits and native
    code are untouched, so nothing in the kernel waits differently. ``make test`` runs nbval this
    way, months ahead, so a date in a saved output fails the build. Raises ``ValueError`` for a
    malformed ``when``.
    """
    from datetime import datetime

    datetime.fromisoformat(when)
    startup = into / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-labkit-clock.py").write_text(
        "import time_machine as _labkit_tm\n"
        f"_labkit_tm.travel({when!r}, tick=True).start()\n"
        "del _labkit_tm\n",
        encoding="utf-8",
    )
    return into


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip what varies between runs: timings, widget state, ids made up on the fly."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_NB_META}
    nb.metadata.get("language_info", {}).pop("version", None)
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i:03d}"
        tags = cell.metadata.get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "code":
            cell.outputs = [_unbind_widget(out) for out in _merge_streams(cell.get("outputs", []))]
    return nb


def _unbind_widget(out: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A saved widget view can never find its model again (widget state is not kept): an empty
    ``model_id`` makes JupyterLab hide it instead of showing "model not found"."""
    view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
    if view is not None:
        view["model_id"] = ""
    return out


def _merge_streams(outputs: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """Join adjacent stdout (or stderr) chunks: how a kernel splits them varies run to run."""
    merged: list[nbformat.NotebookNode] = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if prev is not None and out.get("output_type") == prev.get("output_type") == "stream" and out.get("name") == prev.get("name"):
            prev["text"] += out["text"]
            continue
        merged.append(out)
    return merged


@contextmanager
def _pristine_env() -> Iterator[None]:
    """Replay mode, no key, pristine starters and a throwaway progress file: saved outputs show
    the starting point, whatever the learner has done in exercises/."""
    from . import starters
    from .clock import TODAY_ENV, course_date

    saved = {k: os.environ.get(k) for k in ("OPENAI_API_KEY", "LABKIT_MODE", "LABKIT_EXERCISES", "LABKIT_STATE", TODAY_ENV,
                                            "LABKIT_NO_DOTENV")}
    with tempfile.TemporaryDirectory(prefix="labkit-nb-") as tmp:
        os.environ.pop("OPENAI_API_KEY", None)
        os.environ.pop("LABKIT_MODE", None)
        os.environ["LABKIT_NO_DOTENV"] = "1"  # a key in the course's .env must not switch the build to live
        starters.build(into=Path(tmp) / "exercises")
        os.environ["LABKIT_EXERCISES"] = str(Path(tmp) / "exercises")
        os.environ["LABKIT_STATE"] = str(Path(tmp) / "state")
        os.environ[TODAY_ENV] = course_date().isoformat()
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def from_source(src: Path) -> nbformat.NotebookNode:
    nb = cast(nbformat.NotebookNode, jupytext.read(src))  # jupytext ships no type information
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    return nb


def build(src: Path, *, execute: bool = True, timeout: int = 300) -> Path:
    """Execute one source notebook and write ``notebooks/<stem>.ipynb``."""
    nb = from_source(src)
    out = paths.course_root() / "notebooks" / f"{src.stem}.ipynb"
    if execute:
        with _pristine_env():
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(out.parent)}}).execute()
    nbformat.write(clean(nb), out)
    return out


def execute_in_place(src: Path, timeout: int = 600) -> None:
    """Execute a source notebook with the current environment (record mode), keeping nothing but cassettes."""
    nb = from_source(src)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(paths.course_root() / "notebooks")}}).execute()


def sources(names: list[str] | None = None) -> list[Path]:
    found = sorted(p for p in src_dir().glob("[0-9][0-9]_*.py"))
    if names:
        found = [p for p in found if p.stem in names or p.stem[:2] in names]
    return found


def stale() -> list[str]:
    """Notebooks whose cell sources no longer match their jupytext source (no execution needed)."""
    problems = []
    for src in sources():
        out = paths.course_root() / "notebooks" / f"{src.stem}.ipynb"
        if not out.exists():
            problems.append(f"{out.name} is missing")
            continue
        want = [(c.cell_type, c.source) for c in from_source(src).cells]
        have = [(c.cell_type, c.source) for c in nbformat.read(out, as_version=4).cells]
        if want != have:
            problems.append(f"{out.name} differs from notebooks/src/{src.name}")
    return problems
