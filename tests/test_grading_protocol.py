"""The child's result as the parent reads it: strictly, and anything malformed is one learner's clear status."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labkit.checks import get_exercise
from labkit.grading import protocol, records, settings
from labkit.grading.plan import Learner
from labkit.grading.protocol import ProtocolError, RawCheck, RawReport
from labkit.grading.verdict import Exit, learner_record

EX = get_exercise("ex01")
TABLE = {EX.id: {c.id for c in EX.checks}}
GOOD = RawReport("ex01", starter=True, results=tuple(RawCheck(c.id, "pass", "fine") for c in EX.checks))


def doc(**changes: object) -> bytes:
    base: dict[str, object] = {"reports": [{"exercise": "ex01", "results": [{"id": "ex01.messages", "status": "pass"}]}],
                               "violations": [], "tampered": []}
    return json.dumps(base | changes).encode()


def test_what_the_child_writes_the_parent_reads_back() -> None:
    data = protocol.encode([GOOD], ["network access: x"], [])
    raw = protocol.parse(data, TABLE)
    assert raw.reports == (GOOD,) and raw.violations == ("network access: x",) and raw.tampered == ()


@pytest.mark.parametrize(("data", "says"), [
    (b"[1, 2]", "a list, not an object"),
    (b"not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b" " * (protocol.MAX_BYTES + 1), "larger than"),
    (doc(extra=1), "unexpected field 'extra'"),
    (json.dumps({"reports": []}).encode(), "has no 'violations'"),
    (doc(reports={"ex01": []}), "reports is a dict, not a list"),
    (doc(reports=[{"exercise": "ex99"}]), "not graded"),
    (doc(reports=[{"exercise": "ex01"}, {"exercise": "ex01"}]), "more than 1"),
    (doc(reports=[{"exercise": "ex01", "results": [{"id": "ex01.nope", "status": "pass"}]}]), "ex01 does not have"),
    (doc(reports=[{"exercise": "ex01", "results": [{"id": "ex01.messages", "status": "passed"}]}]), "not one of"),
    (doc(reports=[{"exercise": "ex01", "results": [{"id": "ex01.messages", "status": "pass", "detail": {"deep": [1]}}]}]),
     "detail is a dict, not a string"),
    (doc(reports=[{"exercise": "ex01", "starter": "yes"}]), "starter is not true or false"),
    (doc(violations=["v"] * 21), "more than 20"),
    (doc(tampered=[1]), "not a string"),
])
def test_malformed_results_are_refused_with_a_reason(data: bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=says.replace("(", r"\(")):
        protocol.parse(data, TABLE)


def test_a_lone_surrogate_becomes_writable_text() -> None:
    data = doc(reports=[{"exercise": "ex01", "results": [{"id": "ex01.messages", "status": "fail", "detail": "\udcff!"}]}])
    raw = protocol.parse(data, TABLE)
    raw.reports[0].results[0].detail.encode("utf-8")


def graded(tmp_path: Path, result: bytes | None, status: int = 0) -> records.LearnerRecord:
    io_dir = tmp_path / "io"
    io_dir.mkdir(exist_ok=True)
    if result is not None:
        (io_dir / protocol.RESULT).write_bytes(result)
    s = settings.Settings(("ex01",), 3.0, 256, 1.0, tmp_path, (), {}, "key")
    return learner_record(Learner("ada", "ada", tmp_path), Exit(status, 1000, 0.5, False), io_dir, tmp_path / "sub", s)


@pytest.mark.parametrize("result", [b"{", b"[]", b"[" * 50_000, doc(reports=[{"exercise": "ex01", "aborted": 3}]), b""])
def test_a_malformed_result_is_one_learners_status_never_a_crash(tmp_path: Path, result: bytes) -> None:
    rec = graded(tmp_path, result)
    assert rec.status == "invalid result" and rec.score == 0 and "could not read" in rec.detail
    assert {c.status for ex in rec.exercises for c in ex.results} == {"error"}


def test_a_good_result_is_graded_from_the_graders_own_table(tmp_path: Path) -> None:
    rec = graded(tmp_path, protocol.encode([GOOD], [], []))
    assert rec.status == "ok" and rec.score == rec.max_score == sum(c.points for c in EX.checks)
    assert [c.metric for c in rec.exercises[0].results] == [c.metric for c in EX.checks] and rec.exercises[0].starter
    assert graded(tmp_path, protocol.encode([GOOD], [], []), status=7 << 8).status == "crashed: exit code 7"
    assert records.LearnerRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec


@pytest.mark.parametrize("stored", [[], {"learner": "ada"}, {"learner": "ada", "status": 1}])
def test_a_damaged_stored_record_is_refused(stored: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        records.LearnerRecord.from_json(stored)


def test_exit_codes_are_distinct() -> None:
    codes = [protocol.EXIT_OK, protocol.EXIT_INTERNAL, protocol.EXIT_MEMORY, protocol.EXIT_CHANNEL]
    assert len(set(codes)) == 4 and all(0 <= c < 128 for c in codes) and os.EX_OK == protocol.EXIT_OK
