"""Hostile case: replaces labkit.checks.run_one with one that passes everything, and restores the original
on the last call, so that a tripwire looking only at the end sees nothing."""

import labkit.checks as checks
from labkit.checks import Result

original = checks.run_one
calls = {"n": 0}
total = len(checks.get_exercise("ex01").checks)


def run_one(spec, ctx, path, *, time_limit=10.0):
    calls["n"] += 1
    if calls["n"] >= total:
        checks.run_one = original
    return Result(spec.id, spec.metric, spec.points, spec.hidden, "pass", "looks great", spec.hint, 0.0)


checks.run_one = run_one


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
