"""Success-metric checks: the model, the registry and the runner.

Each exercise ``exNN`` has ``labkit/checks/exNN.toml`` (the data: title, file, and for
every check its metric text, points, hidden flag and hint) and ``labkit/checks/exNN.py``
(the functions, registered with ``@register("exNN.some-id")``). A check function takes a
:class:`Context` and returns ``(passed, detail)`` or an :class:`Outcome`; it raises
:class:`Skip` when it cannot apply.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from .. import paths
from ..clock import Clock
from ..errors import ConfigError, EnvironmentProblem, UnknownExerciseError

if TYPE_CHECKING:
    import openai

    from ..faults import FaultTransport
    from ..replay import ReplayTransport

Status = Literal["pass", "fail", "skip", "error"]
CHECKS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Outcome:
    """What a check concluded, with a one-line detail of what it saw."""

    status: Status
    detail: str = ""


class Skip(Exception):
    """Raised by a check that does not apply (the reason is shown)."""


class CheckTimeout(BaseException):
    """A check ran past its time limit (BaseException so ``except Exception`` in learner code cannot swallow it)."""


@dataclass(frozen=True)
class CheckSpec:
    """One success metric: data from the exercise's TOML plus its function."""

    id: str
    metric: str
    points: int
    hidden: bool
    hint: str
    fn: Callable[[Context], Any]


@dataclass(frozen=True)
class Exercise:
    """An exercise: its id, lesson title, learner file stem and checks."""

    id: str
    title: str
    file: str
    notebook: str
    checks: tuple[CheckSpec, ...]
    lesson: str = ""  # which part of the lesson it is, e.g. "Exercise 1: parameter tuning"

    def path_in(self, folder: Path) -> Path:
        return folder / f"{self.file}.py"


class Context:
    """What a check receives: the learner's module, a replay client factory, faults and a clock."""

    def __init__(self, exercise: Exercise, module: ModuleType | None, path: Path, import_error: str = "") -> None:
        self.exercise = exercise
        self.module = module
        self.path = path
        self.folder = path.parent
        self.import_error = import_error
        self.clock = Clock()
        #: work the checks of one session share (e.g. ex05's graded run), by a key of the check module's choosing
        self.memo: dict[str, Any] = {}

    def differential(self, name: str, scenario: Callable[[ModuleType], Any]) -> tuple[bool, str]:
        """Run ``scenario`` on the learner's module and on the reference; compare what they show.

        ``(True, summary)`` when the observations match, else ``(False, the first difference)``.
        """
        from . import differential as diff

        if self.module is None:
            raise _NoModule(self.import_error)
        mine = diff.observe(self.module, scenario)
        ref = diff.reference_observation(self.exercise.id, self.exercise.file, name, scenario)
        found = diff.first_difference(mine, ref)
        if found is None:
            return True, f"{name}: behaves as the reference does"
        return False, f"{name}: {found}"

    def client(self, cassette: str | None = None, **kwargs: Any) -> openai.OpenAI:
        """A replay-only client on the exercise's cassette (never live, whatever the environment)."""
        from ..modes import client

        return client(cassette or self.exercise.id, mode="replay", async_=False, **kwargs)

    def async_client(self, cassette: str | None = None, **kwargs: Any) -> openai.AsyncOpenAI:
        from ..modes import client

        return client(cassette or self.exercise.id, mode="replay", async_=True, **kwargs)

    @property
    def faults(self) -> ModuleType:
        """``labkit.faults``: scripted failures and latency for the learner's client."""
        return importlib.import_module("labkit.faults")

    def attr(self, name: str) -> Any:
        """A function or class the learner must define, or a failing Outcome if it is missing."""
        if self.module is None:
            raise _NoModule(self.import_error)
        if not hasattr(self.module, name):
            raise _Missing(f"{self.exercise.file}.py defines no `{name}`; keep the names the starter gives")
        return getattr(self.module, name)


def replay_transport(client: Any) -> ReplayTransport:
    """The replay transport answering a check's client: ``ctx.client()``'s own, or the one behind ``ctx.faults.client()``."""
    from ..faults import FaultTransport
    from ..modes import transport_of
    from ..replay import ReplayTransport

    t = transport_of(client)
    replay = t.then if isinstance(t, FaultTransport) else t
    if not isinstance(replay, ReplayTransport):
        raise TypeError(f"expected a client answering from cassettes, got one on {type(replay).__name__}")
    return replay


def fault_transport(client: Any) -> FaultTransport:
    """The fault-injecting transport of a client made by ``ctx.faults.client()``."""
    from ..faults import FaultTransport
    from ..modes import transport_of

    t = transport_of(client)
    if not isinstance(t, FaultTransport):
        raise TypeError(f"expected a labkit.faults client, got one on {type(t).__name__}")
    return t


class _NoModule(Exception):
    pass


class _Missing(Exception):
    pass


@dataclass(frozen=True)
class Result:
    """One check's result, ready to render or grade."""

    id: str
    metric: str
    points: int
    hidden: bool
    status: Status
    detail: str
    hint: str
    seconds: float

    @property
    def earned(self) -> int:
        return self.points if self.status == "pass" else 0


@dataclass(frozen=True)
class Report:
    """All results of one exercise for one folder.

    ``starter``: the file is the untouched starter. ``aborted``: why the checks stopped early
    (set by the grader when learner code ends the process from inside a check).
    """

    exercise: str
    title: str
    file: str
    results: tuple[Result, ...]
    import_error: str = ""
    starter: bool = False
    aborted: str = ""

    @property
    def score(self) -> int:
        return sum(r.earned for r in self.results)

    @property
    def max_score(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def passed(self) -> bool:
        """Every non-hidden check passes (what `labkit check` exits 0 on)."""
        return all(r.status == "pass" for r in self.results if not r.hidden)

    def to_dict(self, *, reveal_hidden: bool = True) -> dict[str, Any]:
        """Everything, or (``reveal_hidden=False``) only what a learner may see of each check."""
        from ..display import visible

        return {
            "exercise": self.exercise, "title": self.title, "file": self.file,
            "score": self.score, "max_score": self.max_score, "passed": self.passed,
            "import_error": self.import_error, "starter": self.starter, "aborted": self.aborted,
            "results": [asdict(r) | {"earned": r.earned} if reveal_hidden else asdict(visible(r)) for r in self.results],
        }

    def __repr__(self) -> str:
        visible = [r for r in self.results if not r.hidden]
        ok = sum(r.status == "pass" for r in visible)
        return f"<{self.exercise}: {self.score}/{self.max_score} points, {ok} of {len(visible)} visible checks pass>"

    def _repr_html_(self) -> str:
        from ..display import report_html

        return report_html(self)


# --------------------------------------------------------------------------- registry

_FUNCS: dict[str, Callable[[Context], Any]] = {}
_EXERCISES: dict[str, Exercise] = {}


def register(check_id: str) -> Callable[[Callable[[Context], Any]], Callable[[Context], Any]]:
    """Register a check function under the id its TOML entry uses (``"ex01.returns-completion"``)."""

    def deco(fn: Callable[[Context], Any]) -> Callable[[Context], Any]:
        _FUNCS[check_id] = fn
        return fn

    return deco


def exercise_ids() -> list[str]:
    """Every exercise with a TOML file, in order."""
    return sorted(p.stem for p in CHECKS_DIR.glob("ex*.toml"))


def get_exercise(exercise_id: str) -> Exercise:
    """Load an exercise's data and bind its check functions."""
    ex_id = exercise_id.lower()
    if ex_id in _EXERCISES:
        return _EXERCISES[ex_id]
    toml_path = CHECKS_DIR / f"{ex_id}.toml"
    if not toml_path.exists():
        known = ", ".join(exercise_ids()) or "none"
        raise UnknownExerciseError(f"No exercise {exercise_id!r}: known exercises are {known}")
    data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    importlib.import_module(f"labkit.checks.{ex_id}")
    specs = []
    for item in data["check"]:
        cid = f"{ex_id}.{item['id']}"
        if cid not in _FUNCS:
            raise RuntimeError(f"{toml_path.name} lists check {cid!r} but labkit/checks/{ex_id}.py registers no function for it")
        specs.append(
            CheckSpec(
                id=cid, metric=item["metric"], points=int(item.get("points", 1)), hidden=bool(item.get("hidden", False)),
                hint=item["hint"], fn=_FUNCS[cid],
            )
        )
    ex = Exercise(id=ex_id, title=data["title"], file=data["file"], notebook=data.get("notebook", ""), checks=tuple(specs),
                  lesson=data.get("lesson", ""))
    _EXERCISES[ex_id] = ex
    return ex


# --------------------------------------------------------------------------- running


def load_learner_module(path: Path) -> ModuleType:
    """Import a learner's file by path, fresh each time (edits are picked up)."""
    name = f"_labkit_learner_{path.stem}_{time.monotonic_ns()}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    sys.path.insert(0, folder)  # so the learner's own helper modules import
    sys.modules[name] = module  # dataclasses and inspect look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def _describe(err: BaseException, path: Path | None = None) -> str:
    """One line naming the exception and, if in the learner's file, where."""
    where = ""
    if path is not None:
        frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).name == path.name]
        if frames:
            where = f" (line {frames[-1].lineno})"
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg} (line {err.lineno})"
    if isinstance(err, NotImplementedError):
        return f"not implemented yet: {err or 'a TODO is still to do'}{where}"
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text[:200]}{where}"


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise CheckTimeout after ``seconds`` (main thread only; elsewhere no limit)."""
    import threading

    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


#: How a check's detail starts when the course's own setup failed, not the learner's code.
COURSE_PROBLEM = "course problem (not your code):"


def course_problem(err: BaseException) -> BaseException | None:
    """The course-setup error behind ``err`` (a broken cassette or catalog, a missing tool), if any.

    These are never the learner's fault: the check reports ``error`` and the grader refuses to
    grade instead of charging the learner.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, (ConfigError, EnvironmentProblem)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def run_one(spec: CheckSpec, ctx: Context, path: Path, *, time_limit: float = 10.0) -> Result:
    """Run one check; learner exceptions become a fail with what was raised."""
    start = time.perf_counter()
    try:
        with _time_limit(time_limit):
            got = spec.fn(ctx)
        outcome = got if isinstance(got, Outcome) else Outcome("pass" if got[0] else "fail", str(got[1]))
    except Skip as s:
        outcome = Outcome("skip", str(s))
    except _NoModule as e:
        outcome = Outcome("error", f"the file did not import: {e}")
    except _Missing as e:
        outcome = Outcome("fail", str(e))
    except CheckTimeout as e:
        outcome = Outcome("fail", f"your code {e}: look for an endless loop or a real sleep")
    except Exception as e:  # noqa: BLE001 - learner code may raise anything
        problem = course_problem(e)
        if problem is not None:
            outcome = Outcome("error", f"{COURSE_PROBLEM} {type(problem).__name__}: {str(problem)[:300]}")
        else:
            outcome = Outcome("fail", f"your code raised {_describe(e, path)}")
    return Result(spec.id, spec.metric, spec.points, spec.hidden, outcome.status, outcome.detail, spec.hint,
                  time.perf_counter() - start)


def run_checks(exercise_id: str, folder: str | Path | None = None, *, time_limit: float = 10.0) -> Report:
    """Run every check of an exercise on ``folder/exNN_topic.py`` (default ``exercises/``)."""
    ex = get_exercise(exercise_id)
    base = Path(folder) if folder else paths.exercises_dir()
    if not base.is_absolute() and not base.exists():
        base = paths.course_root() / base
    path = base if base.suffix == ".py" else ex.path_in(base)
    base = path.parent
    module, error, starter = None, "", False
    if not path.exists():
        error = f"{path} does not exist: copy the starter from exercises/{ex.file}.py"
    else:
        starter = _is_starter(path)
        try:
            with _time_limit(time_limit):
                module = load_learner_module(path)
        except (Exception, CheckTimeout) as e:  # noqa: BLE001 - a learner module may fail to import in any way
            error = _describe(e, path)
        except SystemExit as e:
            error = f"the file calls sys.exit({e.code}) when imported; remove it"
    ctx = Context(ex, module, path, error)
    results = tuple(run_one(spec, ctx, path, time_limit=time_limit) for spec in ex.checks)
    return Report(ex.id, ex.title, ex.file, results, error, starter)


def _is_starter(path: Path) -> bool:
    """Whether ``path`` is a starter exactly as `labkit exercises build` wrote it."""
    from ..starters import is_pristine

    try:
        return is_pristine(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False


def check(exercise_id: str, folder: str | Path | None = None) -> Report:
    """Run an exercise's checks and return a report that renders as a table in a notebook."""
    from ..progress import record

    report = run_checks(exercise_id, folder)
    if folder is None:
        record(report)
    return report
