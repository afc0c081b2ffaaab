"""Bad input from instructors and learners: each gets one clear line and exit code 2 (or its row), never a traceback."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.grading import outputs, plan, run
from labkit.grading.records import LearnerRecord

ROOT = Path(__file__).resolve().parent.parent


def labkit(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")} | {"LABKIT_ROOT": str(ROOT)} | env
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True, text=True, env=full,
                          timeout=timeout, check=False)


def one_line(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    text = (done.stdout + done.stderr).strip()
    assert done.returncode == code, text
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


# --------------------------------------------------------------------------- lint


@pytest.mark.parametrize(("arg", "says"), [
    ('{"model": "gpt-5-mini", "messages": [', "not valid JSON"),
    ('[{"model": "gpt-5-mini"}]', "a JSON list, not an object"),
    ("@/nonexistent/request.json", "cannot read /nonexistent/request.json"),
])
def test_lint_bad_input_is_one_line(arg: str, says: str) -> None:
    assert says in one_line(labkit("lint", arg))


def test_lint_bounds_its_work_on_a_50_mb_prompt(tmp_path: Path) -> None:
    body = tmp_path / "big.json"
    body.write_text(json.dumps({"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hello world " * 4_400_000}]}))
    start = time.monotonic()
    done = labkit("lint", f"@{body}", timeout=60)
    assert time.monotonic() - start < 45 and done.returncode == 1, done.stdout + done.stderr
    assert "context-overflow" in done.stdout and "Traceback" not in done.stderr


def test_lint_refuses_a_huge_model_id_quickly() -> None:
    from labkit.lint import lint_request

    start = time.monotonic()
    found = lint_request(model="x" * 5_000_000, messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - start < 5 and found[0].code == "unknown-model"


# --------------------------------------------------------------------------- LABKIT_MODELS and .env


@pytest.mark.parametrize("kind", ["malformed", "utf16", "folder", "price_input = -1.0", "price_input = nan",
                                  "price_output = inf", "context_window = -1"])
def test_a_bad_catalog_override_is_one_line(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "models.toml"
    if "=" in kind:  # silently wrong numbers are refused too
        target.write_text(f'[models."gpt-5-mini"]\n{kind}\n')
    elif kind == "malformed":
        target.write_text('[models."x"\nprice_input = 1\n')
    elif kind == "utf16":
        target.write_bytes('[models."gpt-5-mini"]\nprice_input = 1.0\n'.encode("utf-16"))
    else:
        target.mkdir()
    text = one_line(labkit("lint", '{"model": "gpt-5-mini", "messages": []}', LABKIT_MODELS=str(target)))
    assert "LABKIT_MODELS" in text


@pytest.mark.parametrize(("content", "says"), [
    ("OPENAI_API_KEY=sk-abc\n".encode("utf-16"), "UTF-16"),
    (b"OPENAI_API_KEY=sk-abc\nNAME=Jos\xe9\n", "line 2 is not UTF-8"),
    (b"LABKIT_MODE=replay\nOPENAI_API_KEY sk-secretvalue\n", "line 2 is not NAME=value"),
])
def test_a_bad_dotenv_is_one_line_and_never_shows_the_value(tmp_path: Path, content: bytes, says: str) -> None:
    (tmp_path / ".env").write_bytes(content)
    env = {"LABKIT_ROOT": str(tmp_path), "LABKIT_NO_DOTENV": ""}
    text = one_line(subprocess.run([sys.executable, "-m", "labkit.cli", "record", "01"], capture_output=True, text=True,
                                   env={k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")
                                        and k != "LABKIT_NO_DOTENV"} | env, timeout=60, check=False))
    assert says in text and "secretvalue" not in text


def test_dotenv_follows_python_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.modes import load_dotenv

    (tmp_path / ".env").write_bytes(b"\xef\xbb\xbfOPENAI_API_KEY=sk-from-dotenv # my personal key\nexport ORG='acme'\n")
    monkeypatch.setenv("LABKIT_ROOT", str(tmp_path))
    monkeypatch.delenv("LABKIT_NO_DOTENV")
    monkeypatch.delenv("ORG", raising=False)
    assert sorted(load_dotenv()) == ["OPENAI_API_KEY", "ORG"]  # the BOM is not part of the first name
    assert os.environ["OPENAI_API_KEY"] == "sk-from-dotenv" and os.environ["ORG"] == "acme"  # the comment is not the key
    monkeypatch.delenv("OPENAI_API_KEY")


def test_dotenv_never_switches_builds_and_tests_to_live(tmp_path: Path) -> None:
    """The root conftest (pytest and nbval kernels) and `labkit notebooks build` set LABKIT_NO_DOTENV."""
    from labkit import notebooks

    assert os.environ.get("LABKIT_NO_DOTENV") == "1"
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-planted-in-dotenv\n")
    code = (f"import os; os.environ['LABKIT_ROOT'] = r'{tmp_path}'; from labkit import notebooks, modes\n"
            "with notebooks._pristine_env():\n    print(modes.current_mode())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "LABKIT_NO_DOTENV"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.stdout.strip().endswith("replay"), done.stdout + done.stderr
    assert hasattr(notebooks, "_pristine_env")


# --------------------------------------------------------------------------- cassettes verify, doctor


def test_odd_cassettes_are_problems_not_tracebacks(tmp_path: Path) -> None:
    good = json.loads((ROOT / "cassettes" / "selftest.json").read_text())
    for name, meta in (("list", []), ("text", "authored"), ("inner", {"labkit": 3}), ("none", None)):
        (tmp_path / f"{name}.json").write_text(json.dumps(good | {"metadata": meta}))
    no_body = json.loads(json.dumps(good))
    del no_body["interactions"][0]["response"]["body"]
    (tmp_path / "nobody.json").write_text(json.dumps(no_body))
    (tmp_path / "items.json").write_text(json.dumps(good | {"interactions": [1, "x", {"request": []}]}))
    (tmp_path / "array.json").write_text("[]")
    done = labkit("cassettes", "verify", str(tmp_path))
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    text = done.stdout
    for name in ("list", "text", "inner", "none"):
        assert f"{name}.json: metadata.labkit.provenance" in text
    assert "nobody.json: interaction #0: the response has no body" in text
    assert "items.json: interaction #0 needs a 'request'" in text and "array.json: holds a JSON list" in text
    doctor = labkit("doctor", LABKIT_CASSETTES=str(tmp_path))
    assert "Traceback" not in doctor.stdout + doctor.stderr and "FAIL cassettes" in doctor.stdout, doctor.stdout + doctor.stderr


# --------------------------------------------------------------------------- labkit grade


@pytest.fixture
def subs(tmp_path: Path) -> Path:
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / "ex01_first_call.py", tmp_path / "subs" / "ada")
    return tmp_path / "subs"


@pytest.mark.parametrize(("extra", "says"), [
    (["--out", "FILE"], "cannot write the gradebook to --out"),
    (["--out", "/proc/labkit-grades"], "cannot write the gradebook to --out /proc/labkit-grades"),
    (["--out", "SUBS/grades"], "is inside the submissions folder"),
    (["--timeout", "nan"], "--timeout nan is not a time limit"),
    (["--timeout", "inf"], "--timeout inf is not a time limit"),
    (["--exercise", "ex01", "--exercise", "EX01"], "--exercise ex01 is given more than once"),
])
def test_grade_bad_arguments_are_one_line(subs: Path, extra: list[str], says: str) -> None:
    (subs.parent / "a-file").write_text("not a folder")
    args = [a.replace("FILE", str(subs.parent / "a-file")).replace("SUBS", str(subs)) for a in extra]
    if "--out" not in args:
        args += ["--out", str(subs.parent / "out")]
    if "--exercise" not in args:
        args += ["--exercise", "ex01"]
    assert says in one_line(labkit("grade", str(subs), "--no-progress", *args))


def test_a_locked_out_folder_is_refused_and_nothing_is_lost(subs: Path) -> None:
    out = subs.parent / "out"
    out.mkdir()
    fd = os.open(out / ".labkit-grade.lock", os.O_RDWR | os.O_CREAT)
    os.write(fd, b"4242\n")
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        text = one_line(labkit("grade", str(subs), "--out", str(out), "--exercise", "ex01", "--no-progress"))
    finally:
        os.close(fd)
    assert "another `labkit grade` (pid 4242) is writing to" in text
    assert not (out / "gradebook.csv").exists()


def test_six_runs_at_once_on_one_out(subs: Path) -> None:
    out = subs.parent / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")} | {"LABKIT_ROOT": str(ROOT)}
    cmd = [sys.executable, "-m", "labkit.cli", "grade", str(subs), "--out", str(out), "--exercise", "ex01", "--no-progress"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert all(code in (0, 2) for code, _, _ in results), results
    assert any(code == 0 for code, _, _ in results)
    for code, stdout, stderr in results:
        assert "Traceback" not in stdout + stderr
        if code == 2:
            assert "another `labkit grade`" in stdout + stderr
    rec = json.loads((out / "results" / "ada.json").read_text())
    assert rec["status"] == "ok" and rec["score"] == rec["max_score"]
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.png"))


def test_orphans_of_a_killed_run_are_cleaned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / f"{run.WORK_PREFIX}dead"
    (stale / "redis-1").mkdir(parents=True)
    (stale / "redis-1" / "dump").write_bytes(b"x" * 1000)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (stale / "owner").write_text(f"{dead.pid} 12345\n")
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(stale / "redis-1" / "redis.sock")])
    deadline = time.monotonic() + 10  # wait until the child has exec'd (its command line names the folder)
    while str(stale).encode() not in Path(f"/proc/{server.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)
    live = tmp_path / f"{run.WORK_PREFIX}live"
    live.mkdir()
    (live / "owner").write_text(f"{os.getpid()} {run._started(os.getpid())}\n")
    try:
        assert run.clean_orphans() == 1
        assert server.wait(timeout=10) != 0 and not stale.exists() and live.exists()
    finally:
        server.kill()


def test_tooling_folders_are_reported_and_learners_with_files_graded(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    for name in (".git", "node_modules", ".ada", "bob", "José", "=HYPERLINK(\"x\")"):
        (subs / name).mkdir(parents=True)
    for name in (".ada", "bob", "José", "=HYPERLINK(\"x\")"):
        (subs / name / "ex01_first_call.py").write_text("x = 1\n")
    (subs / "node_modules" / "left-pad.js").write_text("")
    learners, skipped = plan.find_learners(subs, tmp_path / "out")
    assert sorted(ln.name for ln in learners) == sorted([".ada", "bob", "José", "=HYPERLINK(\"x\")"])
    assert sorted(name for name, _ in skipped) == [".git", "node_modules"]
    assert {ln.name: ln.safe for ln in learners}["José"] == "José"


def test_csv_formulas_are_escaped() -> None:
    rec = LearnerRecord('=HYPERLINK("http://evil","x")', "ok", "+cmd|' /C calc'!A0", ())
    rows = list(csv.reader(io.StringIO(outputs.gradebook_csv([rec], []))))
    assert rows[1][0] == "'=HYPERLINK(\"http://evil\",\"x\")" and rows[1][-1].startswith("'+cmd")
