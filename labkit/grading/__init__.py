"""``labkit grade``: grade a class, each submission in its own sandboxed process.

The parent drops secrets from its environment (re-executing itself if it had any), loads
labkit, the checks, the SDK, the tokenizer and the cassettes once, and warms them by grading
the reference solutions; then it starts one child per submission (a ``fork()``, so a child
starts warm in milliseconds). Each child grades a copy of the submission under resource
limits and an audit hook, writes its raw result to a file the learner's code cannot reach by
path, and exits. The parent reads that result strictly, turns each exit into a record with a
clear status, writes ``results/<learner>.json`` atomically as each one finishes (a re-run
skips unchanged submissions), then ``gradebook.csv``, ``gradebook.json``,
``feedback/<learner>.md|.html`` and ``summary.md|.png``.

One concern per module:

* :mod:`~labkit.grading.run`: :func:`grade`, the run from start to finish;
* :mod:`~labkit.grading.settings`: limits, the grader key; :mod:`~labkit.grading.plan`: the learners;
* :mod:`~labkit.grading.environ`: the environment without secrets;
* :mod:`~labkit.grading.warm`: warming the parent before the first fork;
* :mod:`~labkit.grading.supervise`: the job pool (fork, reap, deadlines, strays);
  :mod:`~labkit.grading.redis_slots`: private Redis servers for the children;
* :mod:`~labkit.grading.child`: what runs inside a child; :mod:`~labkit.grading.sandbox`: its guards;
* :mod:`~labkit.grading.protocol`: the child's result, written and strictly parsed;
* :mod:`~labkit.grading.verdict`: a finished child's exit turned into a record;
* :mod:`~labkit.grading.records`: the typed records; :mod:`~labkit.grading.store`: their files;
* :mod:`~labkit.grading.outputs`: gradebook, feedback (via :mod:`labkit.display`) and summary.
"""

from __future__ import annotations

from ..errors import GradingError
from .run import grade

__all__ = ["GradingError", "grade"]
