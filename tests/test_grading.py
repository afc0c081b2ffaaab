"""`labkit grade` end to end, as an instructor runs it: hostile submissions, statuses, secrecy, resume.

One grading run (module fixture) covers three correct submissions (one noisy on stderr), the
starter and every case in tests/hostile/, each in the bubblewrap sandbox. The grader is given a
planted OPENAI_API_KEY, a course root in a temp folder with a planted .env, .git, tests/hostile
and solutions/, and a home folder with a planted file (so a failing guard could only damage a
copy, and any leak shows).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit import grading
from labkit.grading import environ
from labkit.paths import exercises_dir

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "hostile"
TIMEOUT = 3
EXPECTED = {
    "sol_a": "ok",
    "sol_b": "ok",
    "starter": "ok",
    "stderr_warnings": "ok",
    "forge_result": "ok",
    "syntax_error": "import error",
    "raise_at_import": "import error",
    "sys_exit": "import error",
    "loop_at_import": "timeout",
    "loop_in_function": "timeout",
    "memory_hog": "memory limit",
    "print_flood": "output limit",
    "write_flood": "output limit",
    "os_exit": "crashed: exit code 7",
    "subprocess_spawn": "blocked: starting a process",
    "import_solutions": "blocked: importing the course's solutions",
    "network": "blocked: network access",
    "write_outside": "blocked: writing outside the submission",
    "env_reader": "blocked: reading a process's environment or memory",
    "dotenv_reader": "ok",
    "monkeypatch_labkit": "tampering detected",
    "stdlib_frames": "blocked: starting a process",
    "posixsubprocess_renamed": "ok",
    "ctypes_memmove": "blocked: ctypes",
    "widen_hook": "blocked: network access",
    "dir_fd_out": "ok",
    "proc_dir_fd": "ok",
    "forge_and_exit": "tampering detected",
    "patch_and_restore": "tampering detected",
    "thread_patch": "tampering detected",
    "pidfd_signal": "ok",
    "malformed_result": "grader error: malformed result",
    "deep_result": "grader error: malformed result",
    "disk_flood": "disk limit",
    "read_secrets": "ok",
}
FULL_MARKS = {"sol_a", "sol_b", "stderr_warnings"}
MARKERS = [Path(f"/tmp/labkit_hostile_marker_{m}") for m in ("stdlib", "posix", "ctypes", "widen")]


def tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def run_grade(subs: Path, out: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "labkit.cli", "grade", str(subs), "--out", str(out), "--jobs", "2",
           "--timeout", str(TIMEOUT), "--memory", "256", "--exercise", "ex01", "--no-progress", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("grading")
    course, subs, out = base / "course", base / "subs", base / "out"
    for folder in ("cassettes", "solutions"):
        shutil.copytree(ROOT / folder, course / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("sol_a", "sol_b"):
        (subs / name).mkdir(parents=True)
        shutil.copy(ROOT / "solutions" / "ex01_first_call.py", subs / name)
    (subs / "starter").mkdir()
    shutil.copy(exercises_dir() / "ex01_first_call.py", subs / "starter")
    for case in sorted(p for p in HOSTILE.iterdir() if p.is_dir()):
        shutil.copytree(case, subs / case.name, ignore=shutil.ignore_patterns("__pycache__"))
    noise = (HOSTILE / "stderr_warnings" / "ex01_first_call.py").read_text()
    (subs / "stderr_warnings" / "ex01_first_call.py").write_text(
        (ROOT / "solutions" / "ex01_first_call.py").read_text() + "\n" + noise)
    tag = secrets.token_hex(6)
    pwned = [Path(f"/tmp/labkit_pwned_{tag}"), course / "solutions" / f"pwned_{tag}.txt",
             course / "solutions" / "ex01_first_call.py", course / "cassettes"]
    (subs / "write_outside" / "targets.txt").write_text("\n".join(map(str, pwned)) + "\n")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    (subs / "network" / "port.txt").write_text(str(listener.getsockname()[1]))
    key = f"sk-planted-{secrets.token_hex(16)}"
    (course / ".env").write_text(f"OPENAI_API_KEY=sk-dotenv-{key}\n")  # an instructor's .env in the course
    home = base / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "secret.txt").write_text(f"home-{key}\n")
    (course / ".git").mkdir()
    (course / ".git" / "config").write_text(f"[remote] token = git-{key}\n")
    (course / "tests" / "hostile" / "full_solution").mkdir(parents=True)
    (course / "tests" / "hostile" / "full_solution" / "ex01_first_call.py").write_text(f"# tests-{key}\n")
    with open(course / "solutions" / "ex01_first_call.py", "a") as fh:
        fh.write(f"\n# reference-{key}\n")
    (subs / "read_secrets" / "targets.txt").write_text("\n".join(str(p) for p in (
        course / ".env", home, course / ".git", course / "tests", course / "solutions")) + "\n")
    (subs / "dir_fd_out" / "targets.txt").write_text(f"{out} sol_a\n")
    for m in MARKERS:
        m.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env |= {"LABKIT_ROOT": str(course), "OPENAI_API_KEY": key, "AWS_SECRET_ACCESS_KEY": f"aws-{key}", "HOME": str(home)}
    before = {"subs": tree_hash(subs), "course": tree_hash(course)}
    done = run_grade(subs, out, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = {r["learner"]: r for r in json.loads((out / "gradebook.json").read_text())["learners"]}
    yield {"subs": subs, "out": out, "course": course, "env": env, "key": key, "pwned": pwned, "before": before,
           "listener": listener, "records": records, "stdout": done.stdout}
    listener.close()


def test_every_hostile_case_has_an_expectation() -> None:
    assert {p.name for p in HOSTILE.iterdir() if p.is_dir()} <= set(EXPECTED)


def test_one_row_per_learner_with_a_clear_status(graded: dict[str, Any]) -> None:
    got = {name: rec["status"] for name, rec in graded["records"].items()}
    assert got == EXPECTED
    assert f"graded {len(EXPECTED)} submission(s)" in graded["stdout"]


def test_scores(graded: dict[str, Any]) -> None:
    for name, rec in graded["records"].items():
        if name in FULL_MARKS:
            assert rec["score"] == rec["max_score"] == 7, (name, rec["exercises"])
        else:
            assert rec["score"] == 0, (name, rec["status"], rec["detail"])
    assert "run_one" in graded["records"]["monkeypatch_labkit"]["detail"]
    assert "sys.exit(3)" in graded["records"]["sys_exit"]["detail"]


def test_feedback_never_reveals_hidden_checks(graded: dict[str, Any]) -> None:
    data = tomllib.loads((ROOT / "labkit" / "checks" / "ex01.toml").read_text())
    hidden = [c for c in data["check"] if c.get("hidden")]
    assert hidden
    always = {t for c in hidden for t in (c["metric"], c["hint"])}
    assert len(list((graded["out"] / "feedback").iterdir())) == 2 * len(EXPECTED)
    for name, rec in graded["records"].items():
        results = [r for ex in rec["exercises"] for r in ex["results"]]
        visible = {r["detail"] for r in results if not r["hidden"]}
        secret = always | {r["detail"] for r in results if r["hidden"] and r["detail"] and r["detail"] not in visible}
        for suffix in (".md", ".html"):
            text = (graded["out"] / "feedback" / f"{name}{suffix}").read_text()
            assert "Hidden check" in text
            for s in secret:
                assert s not in text and s.replace("'", "&#x27;") not in text, (name, suffix, s)


def test_originals_and_course_untouched(graded: dict[str, Any]) -> None:
    assert tree_hash(graded["subs"]) == graded["before"]["subs"]
    assert tree_hash(graded["course"]) == graded["before"]["course"]
    assert not graded["pwned"][0].exists() and not graded["pwned"][1].exists()
    assert not Path("/tmp/labkit_spawned").exists()
    assert not (graded["subs"] / "write_outside" / "notes.txt").exists()
    assert not [m for m in MARKERS if m.exists()]  # no marker file outside the sandbox


def test_victims_keep_full_marks_and_their_files(graded: dict[str, Any]) -> None:
    out = graded["out"]
    for name in FULL_MARKS:
        rec = json.loads((out / "results" / f"{name}.json").read_text())
        assert rec["status"] == "ok" and rec["score"] == rec["max_score"] == 7, rec
        assert "overwritten" not in (out / "results" / f"{name}.json").read_text()
    attackers = set(EXPECTED) - FULL_MARKS
    for name in attackers:
        assert graded["records"][name]["score"] < 7, name


def test_hostile_cases_get_a_clear_status_and_the_grader_survives(graded: dict[str, Any]) -> None:
    recs = graded["records"]
    assert "PIDFD-SIGNAL-RAN" in recs["pidfd_signal"]["stdout_tail"]  # it ran, and the run went on to the end
    assert "READ-SECRETS-RAN" in recs["read_secrets"]["stdout_tail"]
    found = [ln for ln in recs["read_secrets"]["stdout_tail"].splitlines() if ln.startswith("found")]
    assert all("/tiktoken/" in ln for ln in found), found  # only the tokenizer's files, which the checks need
    assert "entries" in recs["proc_dir_fd"]["stdout_tail"] and "found:" not in recs["proc_dir_fd"]["stdout_tail"]
    assert "not written by the grader" in recs["forge_and_exit"]["detail"]
    assert "run_one" in recs["patch_and_restore"]["detail"]
    assert "dataclasses" in recs["thread_patch"]["detail"] or "json" in recs["thread_patch"]["detail"]
    assert "posixsubprocess: started" not in recs["posixsubprocess_renamed"]["stdout_tail"]
    assert "worked" not in recs["ctypes_memmove"]["stdout_tail"]
    assert "wrote through" not in recs["dir_fd_out"]["stdout_tail"]


def test_secrets_never_reach_submissions(graded: dict[str, Any]) -> None:
    dot = graded["records"]["dotenv_reader"]
    assert "DOTENV-READER-RAN mode: replay" in dot["stdout_tail"] and "found in os.environ" not in dot["stdout_tail"]
    rec = graded["records"]["env_reader"]
    assert "ENV-READER-RAN" in rec["stdout_tail"]
    assert "found in os.environ" not in rec["stdout_tail"]
    for f in graded["out"].rglob("*"):  # the key itself, and the planted .env, home, .git, tests and solutions
        if f.is_file():
            assert graded["key"].encode() not in f.read_bytes(), f


def test_network_blocked(graded: dict[str, Any]) -> None:
    listener = graded["listener"]
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_gradebook_csv_and_summary(graded: dict[str, Any]) -> None:
    out = graded["out"]
    with open(out / "gradebook.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    data = tomllib.loads((ROOT / "labkit" / "checks" / "ex01.toml").read_text())
    check_cols = [f"ex01.{c['id']}" for c in data["check"]]
    assert set(check_cols) <= set(rows[0])
    assert {r["learner"] for r in rows} == set(EXPECTED)
    for r in rows:
        assert int(r["score"]) == sum(int(r[c]) for c in check_cols)
    summary = (out / "summary.md").read_text()
    assert "pass rate" in summary and "ex01.messages" in summary and "summary.png" in summary
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((out / "results").glob("*.json"))) == len(EXPECTED)


def test_rerun_resumes_and_regrades_only_changed(graded: dict[str, Any]) -> None:
    subs, out, env = graded["subs"], graded["out"], graded["env"]
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    again = run_grade(subs, out, env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"graded 0 submission(s), {len(EXPECTED)} unchanged" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")} == stamps
    with open(subs / "sol_b" / "ex01_first_call.py", "a") as fh:
        fh.write("\n# edited after the first run\n")
    third = run_grade(subs, out, env)
    assert f"graded 1 submission(s), {len(EXPECTED) - 1} unchanged" in third.stdout, third.stdout + third.stderr[-2000:]
    changed = {n for n, t in stamps.items() if (out / "results" / n).stat().st_mtime_ns != t}
    assert changed == {"sol_b.json"}
    assert json.loads((out / "results" / "sol_b.json").read_text())["score"] == 7


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(grading.GradingError, match="is not a folder"):
        grading.grade(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(grading.GradingError, match="no learner sub-folders"):
        grading.grade(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "empty" / "x").mkdir()
    with pytest.raises(grading.GradingError, match="No exercise 'ex99'"):
        grading.grade(tmp_path / "empty", tmp_path / "out", exercises=["ex99"])


def test_library_call_with_a_secret_grades_in_a_clean_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / "ex01_first_call.py", tmp_path / "subs" / "ada")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-planted")
    summary = grading.grade(tmp_path / "subs", tmp_path / "out", exercises=["ex01"], progress=False)
    assert "1 ok" in summary
    rec = json.loads((tmp_path / "out" / "results" / "ada.json").read_text())
    assert rec["score"] == 7 and rec["status"] == "ok"


def test_secret_names_and_clean_environ() -> None:
    env = {"PATH": "/bin", "HOME": "/h", "OPENAI_API_KEY": "k", "OPENAI_ORG_ID": "o", "AWS_ACCESS_KEY_ID": "a",
           "GITHUB_TOKEN": "t", "DB_PASSWORD": "p", "MY_CREDENTIALS": "c", "TIKTOKEN_CACHE_DIR": "/c",
           "LABKIT_ROOT": "/r", "LC_ALL": "C", "RANDOM_THING": "x"}
    assert environ.secret_names(env) == ["AWS_ACCESS_KEY_ID", "DB_PASSWORD", "GITHUB_TOKEN", "MY_CREDENTIALS",
                                         "OPENAI_API_KEY", "OPENAI_ORG_ID"]
    assert environ.clean_environ(env) == {"PATH": "/bin", "HOME": "/h", "TIKTOKEN_CACHE_DIR": "/c",
                                          "LABKIT_ROOT": "/r", "LC_ALL": "C"}


HOOK_SCRIPT = """
import os, sys
from labkit.grading import sandbox

def trusted_fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return "trusted forked"

namespace = {}  # the same code under the same file name, but not the same code object
exec(compile("def fork():\\n    import os\\n    return os.fork()\\n", trusted_fork.__code__.co_filename, "exec"), namespace)
log = sandbox.install_audit_hook(write_roots=[sys.argv[1]], hidden_roots=[sys.argv[2]],
                                 trusted={id(trusted_fork.__code__): trusted_fork.__code__})
print(trusted_fork())
for name, action in [("lookalike fork", namespace["fork"]), ("write outside", lambda: open(sys.argv[3], "w")),
                     ("read hidden", lambda: open(os.path.join(sys.argv[2], "ref.py")).read()),
                     ("tcp socket", lambda: __import__("socket").socket()), ("gc scan", lambda: __import__("gc").get_objects())]:
    try:
        action()
        print(name, "allowed")
    except PermissionError:
        print(name, "blocked")
with open(os.path.join(sys.argv[1], "inside.txt"), "w") as fh:
    fh.write("ok")
print("inside written", len(log()))
"""


def test_audit_hook_trusts_only_the_checks_own_code(tmp_path: Path) -> None:
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / "ref.py").write_text("SECRET = 1\n")
    (tmp_path / "sub").mkdir()
    outside = tmp_path / "outside.txt"
    done = subprocess.run([sys.executable, "-c", HOOK_SCRIPT, str(tmp_path / "sub"), str(tmp_path / "hidden"), str(outside)],
                          capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert done.stdout.split("\n")[:7] == [
        "trusted forked", "lookalike fork blocked", "write outside blocked", "read hidden blocked",
        "tcp socket blocked", "gc scan blocked", "inside written 5"], done.stdout + done.stderr
    assert not outside.exists()


def test_no_namespaces_means_no_grading_unless_no_sandbox(tmp_path: Path) -> None:
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / "ex01_first_call.py", tmp_path / "subs" / "ada")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")} | {"LABKIT_BWRAP": "/bin/false"}
    refused = run_grade(tmp_path / "subs", tmp_path / "out", env)
    text = refused.stdout + refused.stderr
    assert refused.returncode == 2 and "--no-sandbox" in text and "Traceback" not in text, text
    done = run_grade(tmp_path / "subs", tmp_path / "out", env, "--no-sandbox")
    assert done.returncode == 0 and "UNSANDBOXED" in done.stdout, done.stdout + done.stderr
    book = json.loads((tmp_path / "out" / "gradebook.json").read_text())
    assert book["sandbox"].startswith("none") and book["learners"][0]["score"] == 7
    assert "UNSANDBOXED" in (tmp_path / "out" / "summary.md").read_text()
    with open(tmp_path / "out" / "gradebook.csv", newline="") as fh:
        assert {r["sandbox"] for r in csv.DictReader(fh)} == {"none (--no-sandbox)"}


def test_whole_course_reference_and_alternatives_grade_ok(tmp_path: Path) -> None:
    """Every exercise, graded in the sandbox: the reference and the first alternative of each get
    status ok and full marks (a lazily loaded labkit global or a tool's own 'took longer than'
    message must not read as tampering or a timeout), and the starters get zero, status ok."""
    subs = tmp_path / "subs"
    for name in ("ref", "alt", "start"):
        (subs / name).mkdir(parents=True)
    for sol in (ROOT / "solutions").glob("ex*.py"):
        shutil.copy(sol, subs / "ref")
        shutil.copy(exercises_dir() / sol.name, subs / "start")
    for folder in sorted((ROOT / "tests" / "alternatives").iterdir()):
        # numpy loads ctypes, which the grader refuses (README, threat model): such an alternative is skipped here
        first = next(p for p in sorted(folder.iterdir()) if p.is_dir()
                     and not any("numpy" in f.read_text() for f in p.glob("*.py")))
        for f in first.glob("*.py"):
            shutil.copy(f, subs / "alt")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    cmd = [sys.executable, "-m", "labkit.cli", "grade", str(subs), "--out", str(tmp_path / "out"), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = {r["learner"]: r for r in json.loads((tmp_path / "out" / "gradebook.json").read_text())["learners"]}
    for name in ("ref", "alt"):
        rec = records[name]
        assert (rec["status"], rec["score"]) == ("ok", rec["max_score"]), (name, rec["status"], rec["detail"])
    assert (records["start"]["status"], records["start"]["score"]) == ("ok", 0), records["start"]["detail"]


def test_a_corrupt_cassette_refuses_to_grade(tmp_path: Path) -> None:
    """The reference is graded first in the same sandbox: with a cassette cut in half it cannot score
    full marks, so no learner is graded (never a class of silent low marks) and the message says why."""
    course, subs, out = tmp_path / "course", tmp_path / "subs", tmp_path / "out"
    for folder in ("cassettes", "solutions"):
        shutil.copytree(ROOT / folder, course / folder, ignore=shutil.ignore_patterns("__pycache__"))
    cassette = course / "cassettes" / "ex01.json"
    cassette.write_text(cassette.read_text()[: len(cassette.read_text()) // 2])
    (subs / "ada").mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / "ex01_first_call.py", subs / "ada")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")} | {"LABKIT_ROOT": str(course)}
    done = run_grade(subs, out, env)
    said = done.stdout + done.stderr
    assert done.returncode != 0, said[-2000:]
    assert "no learner is graded" in said and "ex01.json" in said, said[-2000:]
    assert "Traceback" not in said
    assert not (out / "results" / "ada.json").exists()
