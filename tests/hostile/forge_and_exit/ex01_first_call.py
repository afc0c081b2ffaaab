"""Hostile case: finds the result file among its descriptors, writes a full-marks result into it (in every
shape it can guess), then leaves with os._exit(0) before the checks run."""

import json
import os

IDS = ("ex01.messages", "ex01.real-call", "ex01.effort", "ex01.summary", "ex01.cost", "ex01.not-hard-coded",
       "ex01.no-key-in-code")
doc = {"reports": [{"exercise": "ex01", "import_error": "", "aborted": "", "starter": False,
                    "results": [{"id": i, "status": "pass", "detail": "forged", "seconds": 0.0} for i in IDS]}],
       "violations": [], "tampered": [], "fingerprint": ""}
for fd in range(3, 256):
    for data in (json.dumps(doc), "forged\n" + json.dumps(doc)):
        try:
            os.pwrite(fd, data.encode(), 0)
            os.ftruncate(fd, len(data))
        except OSError:
            pass
os._exit(0)
