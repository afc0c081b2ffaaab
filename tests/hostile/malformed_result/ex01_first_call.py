"""Hostile case: digs the job's token out of the grader's frames, writes a result whose 'results' are not
objects (and a result that is not JSON at all), and leaves with os._exit(0): the parent must not crash."""

import os
import sys


def find_token():
    frame = sys._getframe()
    while frame is not None:
        job = frame.f_locals.get("job")
        if job is not None and hasattr(job, "token"):
            return job.token
        frame = frame.f_back
    return "no-token"


def summarize(completion):
    token = find_token()
    doc = token + '\n{"reports": [{"exercise": "ex01", "results": [1, "pass", null]}], "violations": {}, "tampered": 7}'
    for fd in range(3, 64):
        try:
            os.pwrite(fd, doc.encode(), 0)
            os.ftruncate(fd, len(doc))
        except OSError:
            pass
    os._exit(0)


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError
