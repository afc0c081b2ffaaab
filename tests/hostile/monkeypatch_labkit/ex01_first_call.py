"""Hostile case: rewrites labkit so that every check passes."""

import labkit.checks
import labkit.costs
from labkit.checks import Result


def run_one(spec, ctx, path, *, time_limit=10.0):
    return Result(spec.id, spec.metric, spec.points, spec.hidden, "pass", "looks great", spec.hint, 0.0)


labkit.checks.run_one = run_one
labkit.costs.cost = lambda usage, model: None
Result.earned = property(lambda self: self.points)


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
