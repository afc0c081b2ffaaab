"""``labkit grade``: grade a class, each submission in its own bubblewrap sandbox.

The parent drops secrets from its environment (re-executing itself if it had any), takes a
lock on ``--out`` and starts one *slot* per job: a ``bwrap`` sandbox (own user, pid, network,
ipc and uts namespaces; a read-only view of the Python environment, labkit and the cassettes;
nothing of ``.env``, ``.git``, the home folder, ``solutions/`` or ``tests/``) holding a warm
grader, the zygote. Each slot first grades the reference solutions' job like any learner's and
the class is graded only if they score full marks. For each learner the zygote forks a
supervisor that builds fresh namespaces (a private, size-capped ``/tmp``; no ``/proc``) and
forks the runner, which drops every capability, sets resource limits, installs the audit hook
and grades a copy of the submission sent over a socket. The supervisor reports the exit and the
raw result over a pipe; the parent parses it strictly (pydantic), turns it into a record with a
clear status and alone writes ``results/<learner>.json`` (a re-run skips unchanged
submissions), then ``gradebook.csv``, ``gradebook.json``, ``feedback/<learner>.md|.html`` and
``summary.md|.png``.

One concern per module:

* :mod:`~labkit.grading.run`: :func:`grade`, the run from start to finish (lock, orphans, references);
* :mod:`~labkit.grading.settings`: limits, the grader key; :mod:`~labkit.grading.plan`: the learners;
* :mod:`~labkit.grading.environ`: the environment without secrets;
* :mod:`~labkit.grading.jail`: bubblewrap slots and a learner's namespaces (the OS boundary);
* :mod:`~labkit.grading.supervise`: the parent's slots and job pool;
* :mod:`~labkit.grading.zygote` and :mod:`~labkit.grading.warm`: the warm grader inside a slot;
  :mod:`~labkit.grading.redis_slots`: its private Redis;
* :mod:`~labkit.grading.child`: a learner's supervisor and runner; :mod:`~labkit.grading.sandbox`:
  the in-process guards (second layer);
* :mod:`~labkit.grading.protocol`: what crosses the walls, strictly parsed;
* :mod:`~labkit.grading.verdict`: a finished job turned into a record;
* :mod:`~labkit.grading.records`: the typed records; :mod:`~labkit.grading.store`: their files;
* :mod:`~labkit.grading.outputs`: gradebook, feedback (via :mod:`labkit.display`) and summary.
"""

from __future__ import annotations

from ..errors import GradingError
from .run import grade

__all__ = ["GradingError", "grade"]
