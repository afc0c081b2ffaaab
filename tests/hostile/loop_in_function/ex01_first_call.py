"""Hostile case: imports fine, but a function never returns (and swallows the grader's timeout)."""

SYSTEM = "You are a helpful business assistant."


def build_messages(prompt="x"):
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def first_completion(client):
    while True:
        try:
            while True:
                pass
        except BaseException:  # even the per-check time limit is swallowed: only the wall clock stops it
            continue


def summarize(completion):
    return {}
