"""The drift guard: the course's models judged on the catalog, and live on GET /v1/models."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from labkit import doctor
from labkit.course import models as roles

DAY = datetime.date(2026, 12, 1)


def test_course_models_pass_today_and_fail_near_their_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(roles, "ROLES", {"fast": "gpt-6-luna", "old": "gpt-4o-mini", "gone": "o1"})
    found = {f.name: f for f in doctor.course_models(DAY)}
    assert found["model fast"].ok
    old = found["model old"]  # 44 days before 2027-01-14: inside the 60-day window
    assert not old.ok and "2027-01-14" in old.detail and "gpt-6-luna" in old.detail and "labkit/course/models.py" in old.detail
    assert not found["model gone"].ok and "shut down" in found["model gone"].detail
    assert doctor.course_models(datetime.date(2026, 10, 1))[1].ok  # 105 days ahead: fine


class _Models(BaseHTTPRequestHandler):
    listing: list[dict[str, object]] = []

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": self.listing}).encode()
        self.send_response(200 if self.path.endswith("/models") else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_live_drift_guard_reads_shutdown_dates_from_the_api(fake_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(roles, "ROLES", {"fast": "gpt-6-luna", "default": "gpt-6.1-terra", "deep": "gpt-6.1-sol"})
    _Models.listing = [
        {"id": "gpt-6-luna", "object": "model", "created": 0, "owned_by": "openai", "shutdown_date": None},
        {"id": "gpt-6.1-terra", "object": "model", "created": 0, "owned_by": "openai", "shutdown_date": "2027-01-20"},
    ]
    client = openai.OpenAI(api_key="sk-test-not-a-real-key-0000000000000000", base_url=fake_api, max_retries=0)
    found = {f.name: f for f in doctor.live_models(client, DAY)}
    assert found["model fast"].ok
    assert not found["model default"].ok and "2027-01-20" in found["model default"].detail
    assert not found["model deep"].ok and "not in GET /v1/models" in found["model deep"].detail


def test_live_drift_guard_reports_an_unreachable_api() -> None:
    client = openai.OpenAI(api_key="sk-test-not-a-real-key-0000000000000000", base_url="http://127.0.0.1:9/v1",
                           max_retries=0, timeout=2)
    (finding,) = doctor.live_models(client, DAY)
    assert not finding.ok and "GET /v1/models failed" in finding.detail
