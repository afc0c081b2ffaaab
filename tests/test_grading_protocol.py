"""What crosses the sandbox's walls, as the parent reads it: strictly, and anything malformed is one learner's clear status."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from labkit.checks import get_exercise
from labkit.grading import protocol, records, settings
from labkit.grading.plan import Learner
from labkit.grading.protocol import Check, Exercise, JobEnd, ProtocolError
from labkit.grading.verdict import MALFORMED, learner_record

EX = get_exercise("ex01")
TABLE = {EX.id: {c.id for c in EX.checks}}
GOOD = Exercise("ex01", starter=True, results=tuple(Check(c.id, "pass", "fine") for c in EX.checks))
TOKEN = "t0ken"


def doc(**changes: object) -> bytes:
    base: dict[str, object] = {"reports": [{"exercise": "ex01", "results": [{"id": "ex01.messages", "status": "pass"}]}],
                               "violations": [], "tampered": [], "fingerprint": "fp"}
    return f"{TOKEN}\n".encode() + json.dumps(base | changes).encode()


def test_what_the_runner_writes_the_parent_reads_back() -> None:
    raw = protocol.parse(protocol.encode(TOKEN, [GOOD], ["network access: x"], [], "fp"), TOKEN, TABLE)
    assert [c.status for c in raw.reports[0].results] == ["pass"] * len(EX.checks)
    assert raw.violations == ("network access: x",) and raw.tampered == () and raw.fingerprint == "fp"


@pytest.mark.parametrize(("data", "says"), [
    (TOKEN.encode() + b"\n[1, 2]", "should be an object"),
    (TOKEN.encode() + b"\nnot json", "not valid JSON"),
    (TOKEN.encode() + b"\n\xff\xfe", "not UTF-8"),
    (TOKEN.encode() + b"\n" + b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b" " * (protocol.MAX_BYTES + 1), "larger than"),
    (b"forged\n{}", "token"),
    (b'{"reports": []}', "token"),
    (doc(extra=1), "unexpected field 'extra'"),
    (TOKEN.encode() + b'\n{"reports": []}', "violations is missing"),
    (doc(reports={"ex01": []}), "reports"),
    (doc(reports=[{"exercise": "ex99"}]), "not graded"),
    (doc(reports=[{"exercise": "ex01"}, {"exercise": "ex01"}]), "twice"),
    (doc(reports=[{"exercise": "ex01", "results": [{"id": "ex01.nope", "status": "pass"}]}]), "ex01 does not have"),
    (doc(reports=[{"exercise": "ex01", "results": [{"id": "ex01.messages", "status": "passed"}]}]), "status"),
    (doc(reports=[{"exercise": "ex01", "results": [1, "pass", None]}]), "results.0"),
    (doc(reports=[{"exercise": "ex01", "results": [{"id": "ex01.messages", "status": "pass", "detail": {"deep": [1]}}]}]),
     "detail"),
    (doc(reports=[{"exercise": "ex01", "starter": "yes"}]), "starter"),
    (doc(violations=["v"] * 21), "violations"),
    (doc(tampered=[1]), "tampered"),
    (doc(reports=[{"exercise": "ex01", "results": [{"id": "ex01.messages", "status": "pass", "seconds": 1e308 * 10}]}]),
     "seconds"),
])
def test_malformed_results_are_refused_with_a_reason(data: bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=says.replace("(", r"\(")):
        protocol.parse(data, TOKEN, TABLE)


def test_a_lone_surrogate_becomes_writable_text() -> None:
    bad = Exercise("ex01", results=(Check("ex01.messages", "fail", "\udcff!"),))
    raw = protocol.parse(protocol.encode(TOKEN, [bad], [], [], "fp"), TOKEN, TABLE)
    raw.reports[0].results[0].detail.encode("utf-8")


def end(result: bytes, status: int = 0, **changes: object) -> JobEnd:
    fields: dict[str, object] = {"job": 1, "status": status, "killed": False, "seconds": 0.5, "max_rss_kb": 1000,
                                 "stdout": "", "stderr": "", "stdout_bytes": 0, "stderr_bytes": 0, "tmp_full": False,
                                 "result": base64.b64encode(result).decode()}
    return JobEnd.model_validate(fields | changes)


def graded(result: bytes | None, status: int = 0, **changes: object) -> records.LearnerRecord:
    s = settings.Settings(("ex01",), 3.0, 256, 1.0, Path("/nonexistent"), (), {}, "key")
    report = None if result is None else end(result, status, **changes)
    return learner_record(Learner("ada", "ada", Path("/nonexistent")), report, TOKEN, "it was cut short", s, "fp")


@pytest.mark.parametrize("result", [b"{", b"[]", TOKEN.encode() + b"\n" + b"[" * 50_000,
                                    doc(reports=[{"exercise": "ex01", "aborted": 3}]), TOKEN.encode() + b"\n"])
def test_a_malformed_result_is_one_learners_status_never_a_crash(result: bytes) -> None:
    rec = graded(result)
    assert rec.status in (MALFORMED, "tampering detected") and rec.score == 0
    assert {c.status for ex in rec.exercises for c in ex.results} == {"error"}


def test_no_readable_report_is_a_malformed_result() -> None:
    rec = graded(None)
    assert rec.status == MALFORMED and "it was cut short" in rec.detail and rec.score == 0


def test_a_good_result_is_graded_from_the_graders_own_table() -> None:
    rec = graded(protocol.encode(TOKEN, [GOOD], [], [], "fp"))
    assert rec.status == "ok" and rec.score == rec.max_score == sum(c.points for c in EX.checks)
    assert [c.metric for c in rec.exercises[0].results] == [c.metric for c in EX.checks] and rec.exercises[0].starter
    assert graded(protocol.encode(TOKEN, [GOOD], [], [], "fp"), status=7 << 8).status == "crashed: exit code 7"
    assert graded(protocol.encode(TOKEN, [GOOD], [], [], "other")).status == "tampering detected"
    assert graded(protocol.encode("forged", [GOOD], [], [], "fp")).status == "tampering detected"
    assert records.LearnerRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec


def test_a_course_problem_is_never_charged_to_the_learner() -> None:
    from labkit.checks import COURSE_PROBLEM

    broken = Exercise("ex01", results=(Check("ex01.messages", "error", f"{COURSE_PROBLEM} CassetteError: gone"),))
    rec = graded(protocol.encode(TOKEN, [broken], [], [], "fp"))
    assert rec.status == "course problem" and "not charged" in rec.detail and rec.grader_key == ""  # graded again next run


@pytest.mark.parametrize("stored", [[], {"learner": "ada"}, {"learner": "ada", "status": 1}])
def test_a_damaged_stored_record_is_refused(stored: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        records.LearnerRecord.from_json(stored)


def test_supervisor_reports_are_strict() -> None:
    with pytest.raises(ProtocolError, match="seconds"):
        protocol.load(JobEnd, json.dumps(end(b"").model_dump() | {"seconds": "soon"}).encode(), "report")
    with pytest.raises(ProtocolError, match="unexpected field"):
        protocol.load(JobEnd, json.dumps(end(b"").model_dump() | {"score": 7}).encode(), "report")


def test_exit_codes_are_distinct() -> None:
    codes = [protocol.EXIT_OK, protocol.EXIT_INTERNAL, protocol.EXIT_MEMORY]
    assert len(set(codes)) == 3 and all(0 <= c < 128 for c in codes) and os.EX_OK == protocol.EXIT_OK
