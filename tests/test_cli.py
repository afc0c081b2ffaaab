"""The labkit command: doctor, cassette build --check and verify, and the check table it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABKIT = [sys.executable, "-m", "labkit.cli"]


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LABKIT_MODE", "REDIS_URL"))}
    e.update(env)
    return subprocess.run([*LABKIT, *args], capture_output=True, text=True, cwd=ROOT, env=e, timeout=120, check=False)


def test_doctor_reports_replay_and_exits_zero() -> None:
    r = run("doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mode: replay" in r.stdout and "api key: not set" in r.stdout
    assert "tokenizer" in r.stdout and "cassettes" in r.stdout


def test_doctor_never_prints_the_key_and_flags_a_bad_one() -> None:
    fake = "not-a-key-" + "q" * 30
    r = run("doctor", OPENAI_API_KEY=fake)
    assert fake not in r.stdout + r.stderr
    assert r.returncode == 1 and "does NOT look like an OpenAI key" in r.stdout


def test_doctor_flags_an_unreachable_redis() -> None:
    r = run("doctor", REDIS_URL="redis://127.0.0.1:9/0")
    assert r.returncode == 1 and "does not answer" in r.stdout


def test_authored_cassettes_match_sources() -> None:
    r = run("cassettes", "build", "--check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_verify_fails_on_a_leaky_folder(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"interactions": [], "metadata": {"labkit": {"provenance": "authored"}}, "k": "sk-proj-' + "A" * 30 + '"}')
    r = run("cassettes", "verify", str(tmp_path))
    assert r.returncode == 1 and "looks like a secret" in r.stdout


def test_check_prints_one_table_at_80_columns_with_the_starter_note() -> None:
    r = run("check", "ex01", COLUMNS="80")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "This is the starter's state" in r.stdout and "not yet" in r.stdout
    assert max(map(len, r.stdout.splitlines())) <= 80
    assert "client.chat.completions.create(model=MODEL," in r.stdout and "build_messages()" in r.stdout
    done = run("check", "ex01", "--from", "solutions", COLUMNS="80")
    assert done.returncode == 0 and "all checks pass" in done.stdout and "starter" not in done.stdout
