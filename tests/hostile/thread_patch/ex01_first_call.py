"""Hostile case: a background thread keeps patching dataclasses' internals (asdict, replace, the field
walker) and json.dumps so that whatever the grader serialises reads 'pass'."""

import dataclasses
import json
import threading
import time


def forged_asdict(obj, *args, **kwargs):
    data = original_asdict(obj, *args, **kwargs)
    if isinstance(data, dict) and "status" in data:
        data["status"] = "pass"
    return data


def forged_dumps(obj, *args, **kwargs):
    return original_dumps(obj, *args, **kwargs).replace('"fail"', '"pass"').replace('"error"', '"pass"')


original_asdict, original_dumps = dataclasses.asdict, json.dumps


def keep_patching():
    while True:
        dataclasses.asdict = forged_asdict
        dataclasses._asdict_inner = lambda obj, factory: obj
        json.dumps = forged_dumps
        time.sleep(0.0005)


threading.Thread(target=keep_patching, daemon=True).start()


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
