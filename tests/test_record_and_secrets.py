"""Record mode against a real local HTTP server; secrets never reach a cassette."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import labkit
from labkit.modes import ModeError
from labkit.replay import verify_cassette

PLANTED = "sk-proj-" + "Zx9" * 16  # looks like a real key; must never be written


class FakeAPI(BaseHTTPRequestHandler):
    seen_auth: list[str] = []

    def do_POST(self) -> None:
        FakeAPI.seen_auth.append(self.headers.get("authorization", ""))
        self.rfile.read(int(self.headers["content-length"]))
        body = json.dumps({
            "id": "chatcmpl-local", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini-2025-04-14",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("set-cookie", "__cf_bm=secretcookie; path=/")
        self.send_header("openai-organization", "org-secret")
        self.send_header("x-request-id", "req_local")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeAPI)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_record_mode_scrubs_a_planted_key(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    monkeypatch.setenv("LABKIT_MODE", "record")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-secret")
    out = tmp_path / "rec.json"
    c = labkit.client(out, base_url=server)
    r = c.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": f"my key is {PLANTED}"}])
    assert r.choices[0].message.content == "pong"
    assert FakeAPI.seen_auth[-1] == f"Bearer {PLANTED}"  # the real request carried the key...
    text = out.read_text()
    assert PLANTED not in text and "org-secret" not in text and "secretcookie" not in text  # ...the cassette does not
    assert "REDACTED" in text
    data = json.loads(text)
    assert data["metadata"]["labkit"]["provenance"] == "recorded"
    assert data["interactions"][0]["labkit"]["model_snapshot"] == "gpt-4.1-mini-2025-04-14"
    assert verify_cassette(out) == []
    # and what was recorded replays
    monkeypatch.delenv("LABKIT_MODE")
    monkeypatch.delenv("OPENAI_API_KEY")
    replayed = labkit.client(out).chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "my key is REDACTED"}]
    )
    assert replayed.choices[0].message.content == "pong"


def test_verify_catches_a_key_planted_by_hand(root: Path, tmp_path: Path) -> None:
    data = json.loads((root / "cassettes" / "selftest.json").read_text())
    data["interactions"][0]["request"]["headers"]["authorization"] = [f"Bearer {PLANTED}"]
    bad = tmp_path / "leaky.json"
    bad.write_text(json.dumps(data))
    problems = verify_cassette(bad)
    assert any("looks like a secret" in p for p in problems)
    assert any("'authorization'" in p for p in problems)


def test_verify_requires_provenance(root: Path, tmp_path: Path) -> None:
    data = json.loads((root / "cassettes" / "selftest.json").read_text())
    del data["metadata"]
    bad = tmp_path / "anon.json"
    bad.write_text(json.dumps(data))
    assert any("provenance" in p for p in verify_cassette(bad))


def test_live_and_record_need_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_MODE", "live")
    with pytest.raises(ModeError, match="OPENAI_API_KEY"):
        labkit.client("selftest")
    monkeypatch.setenv("LABKIT_MODE", "bogus")
    with pytest.raises(RuntimeError, match="Unknown mode 'bogus'"):
        labkit.current_mode()


def test_key_selects_live_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    assert labkit.current_mode() == "live"
    assert labkit.transport_of(labkit.client()) is None
    assert "LIVE" in labkit.banner()


def test_two_clients_recording_one_cassette_append(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    monkeypatch.setenv("LABKIT_MODE", "record")
    out = tmp_path / "two.json"
    for word in ("one", "two"):
        labkit.client(out, base_url=server).chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": word}])
    assert len(json.loads(out.read_text())["interactions"]) == 2


def test_dotenv_is_read_without_overriding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.modes import load_dotenv

    (tmp_path / ".env").write_text(f"# my key\nexport OPENAI_API_KEY='{PLANTED}'\nLABKIT_MODE=replay\n")
    monkeypatch.setenv("LABKIT_ROOT", str(tmp_path))
    monkeypatch.setenv("LABKIT_MODE", "live-but-set-first")
    assert load_dotenv() == []  # LABKIT_NO_DOTENV (set for tests) wins
    monkeypatch.delenv("LABKIT_NO_DOTENV")
    assert load_dotenv() == ["OPENAI_API_KEY"]
    import os

    assert os.environ["OPENAI_API_KEY"] == PLANTED and os.environ["LABKIT_MODE"] == "live-but-set-first"


def test_no_key_leaks_between_tests() -> None:
    """Runs after the .env test: the key it loaded must be gone (nbval kernels inherit this env)."""
    import os

    assert "OPENAI_API_KEY" not in os.environ and labkit.current_mode() == "replay"


def test_record_scrubs_any_key_format_and_url_credentials(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    odd = "tok_live_" + "Qw8" * 10  # no sk- prefix: only its being the credential betrays it
    monkeypatch.setenv("OPENAI_API_KEY", odd)
    monkeypatch.setenv("LABKIT_MODE", "record")
    out = tmp_path / "odd.json"
    with_creds = server.replace("http://", "http://alice:hunter2-password@")
    c = labkit.client(out, base_url=with_creds, default_query={"api-key": "query-secret-123"})
    c.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": f"echo {odd}"}])
    assert FakeAPI.seen_auth[-1]  # the request carried credentials (httpx sends the URL's as Basic auth)
    text = out.read_text()
    for secret in (odd, "hunter2-password", "alice", "query-secret-123"):
        assert secret not in text, secret
    assert verify_cassette(out) == []


def test_labkit_record_stages_and_moves_only_on_success(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.replay import STAGING_ENV, commit_recordings

    committed = tmp_path / "cassettes" / "ex99.json"
    committed.parent.mkdir()
    committed.write_text('{"committed": true}\n')
    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setenv(STAGING_ENV, str(staging))
    monkeypatch.setenv("LABKIT_CASSETTES", str(committed.parent))
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    monkeypatch.setenv("LABKIT_MODE", "record")
    labkit.client("ex99", base_url=server).chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])
    assert committed.read_text() == '{"committed": true}\n'  # a run that stops here leaves the committed cassette alone
    assert (staging / "ex99.json").exists() and not list(committed.parent.glob(".*.tmp"))
    assert commit_recordings(staging, committed.parent) == [committed]
    assert json.loads(committed.read_text())["metadata"]["labkit"]["provenance"] == "recorded"
