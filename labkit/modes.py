"""``labkit.client()``: a genuine ``openai.OpenAI`` client in replay, live or record mode."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import httpx2
import openai

from .errors import ConfigError
from .errors import ModeError as ModeError  # re-exported: ``from labkit.modes import ModeError`` is public
from .replay import RecordTransport, ReplayTransport, iter_cassettes

if TYPE_CHECKING:
    from .faults import FaultTransport

Mode = Literal["replay", "live", "record"]
MODES: tuple[Mode, ...] = ("replay", "live", "record")
#: Replay needs *some* key for the SDK to construct; this one is not a secret and never leaves the machine.
REPLAY_KEY = "replay-mode-no-key"




def load_dotenv() -> list[str]:
    """Read ``NAME=value`` lines from ``<course root>/.env`` into the environment (python-dotenv's syntax:
    quotes, ``export``, and an inline `` # comment`` after an unquoted value).

    Never overrides a variable that is already set; skipped when ``LABKIT_NO_DOTENV`` is set
    (the grader, ``make test`` and ``labkit notebooks build`` set it, so an instructor's key never
    reaches learner code and never switches a build to live mode). Returns the names set. A file
    that cannot be read (not UTF-8, a line that is not ``NAME=value``) raises
    :class:`~labkit.errors.ConfigError` with the line to fix.
    """
    if os.environ.get("LABKIT_NO_DOTENV"):
        return []
    from .paths import course_root

    path = course_root() / ".env"
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    values = parse_dotenv(raw, str(path))
    loaded = []
    for name, value in values.items():
        if name not in os.environ:
            os.environ[name] = value
            loaded.append(name)
    return loaded


def parse_dotenv(raw: bytes, where: str = ".env") -> dict[str, str]:
    """The ``NAME=value`` pairs of a ``.env`` file's bytes; a ConfigError naming the line to fix."""
    import io

    from dotenv.parser import parse_stream

    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(raw) > 1 and b"\x00" in raw[:200]):
        raise ConfigError(f"{where} is saved as UTF-16: save it as UTF-8 (plain text), with lines like OPENAI_API_KEY=sk-...")
    try:
        text = raw.decode("utf-8-sig")  # a UTF-8 byte-order mark is fine
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ConfigError(f"{where} line {line} is not UTF-8 (byte {raw[err.start]:#04x}): save the file as UTF-8.") from None
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error or (binding.key is not None and binding.value is None):
            shown = re.split(r"[\s=:]", binding.original.string.strip(), maxsplit=1)[0][:40]  # never the value
            raise ConfigError(f"{where} line {line} is not NAME=value (it starts {shown!r}): write it as NAME=value, "
                              "or start it with # to make it a comment.")
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


def current_mode(mode: str | None = None) -> Mode:
    """The mode in force: ``mode`` if given, else ``LABKIT_MODE``, else live with a key, replay without.

    A ``.env`` file at the course root is read first (see :func:`load_dotenv`).
    """
    load_dotenv()
    chosen = (mode or os.environ.get("LABKIT_MODE") or "").strip().lower()
    has_key = bool(os.environ.get("OPENAI_API_KEY"))
    if not chosen:
        return "live" if has_key else "replay"
    if chosen not in MODES:
        raise ModeError(f"Unknown mode {chosen!r}: use one of {', '.join(MODES)} (LABKIT_MODE or mode=...).")
    if chosen in ("live", "record") and not has_key:
        raise ModeError(
            f"{chosen} mode needs an API key: set OPENAI_API_KEY in your environment or in a .env file "
            "(never in a notebook), or unset LABKIT_MODE to replay the recordings offline."
        )
    return chosen


def banner(mode: str | None = None) -> str:
    """One line saying which mode is in force and what that means."""
    m = current_mode(mode)
    if m == "replay":
        return (
            "labkit mode: REPLAY. No API key is used and nothing leaves this machine; answers come from "
            "cassettes/ and each is marked 'authored' (written for the course) or 'recorded' (real API)."
        )
    if m == "live":
        return "labkit mode: LIVE. Requests go to the real OpenAI API with your key and are billed to you."
    return "labkit mode: RECORD. Requests go to the real API (billed) and are saved, scrubbed, into cassettes/."


def _cassettes(cassette: str | Path | Sequence[str | Path] | None) -> list[str | Path]:
    if cassette is None:
        return list(iter_cassettes())
    if isinstance(cassette, (str, Path)):
        return [cassette]
    return list(cassette)


@overload
def client(
    cassette: str | Path | Sequence[str | Path] | None = ...,
    *,
    mode: str | None = ...,
    async_: Literal[False] = ...,
    simulate: bool = ...,
    **openai_kwargs: Any,
) -> openai.OpenAI: ...
@overload
def client(
    cassette: str | Path | Sequence[str | Path] | None = ...,
    *,
    mode: str | None = ...,
    async_: Literal[True],
    simulate: bool = ...,
    **openai_kwargs: Any,
) -> openai.AsyncOpenAI: ...
def client(
    cassette: str | Path | Sequence[str | Path] | None = None,
    *,
    mode: str | None = None,
    async_: bool = False,
    simulate: bool = False,
    **openai_kwargs: Any,
) -> openai.OpenAI | openai.AsyncOpenAI:
    """A real ``openai.OpenAI`` (or ``AsyncOpenAI`` with ``async_=True``) in the current mode.

    ``cassette`` names the recording(s) to answer from in replay mode (``"ex01"`` means
    ``cassettes/ex01.json``; ``None`` means every cassette) and the file to write in record
    mode. ``simulate=True`` (replay only) lets a well-formed request on a recorded task get the
    recorded answer with numbers computed for it (see :mod:`labkit.simulate`); graded runs use it.
    Other keyword arguments go to the SDK client (``max_retries``, ``timeout``, ...).
    The transport is available as ``labkit.transport_of(client)``.
    """
    m = current_mode(mode)
    transport: httpx2.BaseTransport | None
    if m == "replay":
        transport = ReplayTransport(_cassettes(cassette), simulate=simulate)
        openai_kwargs.setdefault("api_key", REPLAY_KEY)
        openai_kwargs.setdefault("base_url", "https://api.openai.com/v1")
    elif m == "record":
        if cassette is None or not isinstance(cassette, (str, Path)):
            raise ModeError("record mode needs one cassette name to write, e.g. labkit.client('ex01').")
        transport = RecordTransport(cassette)
    else:
        transport = None
    if async_:
        http: Any = httpx2.AsyncClient(transport=transport) if transport else None
        made: openai.OpenAI | openai.AsyncOpenAI = openai.AsyncOpenAI(http_client=http, **openai_kwargs)
    else:
        http = httpx2.Client(transport=transport) if transport else None
        made = openai.OpenAI(http_client=http, **openai_kwargs)
    attach_transport(made, transport)
    return made


def attach_transport(made: openai.OpenAI | openai.AsyncOpenAI, transport: httpx2.BaseTransport | None) -> None:
    """Keep on a client the labkit transport behind it, as ``client._labkit_transport`` (see :func:`transport_of`)."""
    # The SDK's client classes declare no such attribute: labkit adds it on purpose, as the handle the
    # lessons and checks read back; this is the one place that sets it.
    made._labkit_transport = transport  # type: ignore[union-attr]


def transport_of(c: openai.OpenAI | openai.AsyncOpenAI) -> ReplayTransport | RecordTransport | FaultTransport | None:
    """The labkit transport behind a client made by ``client()`` (or ``labkit.faults.client()``), or None when live."""
    return getattr(c, "_labkit_transport", None)


def provenance(c: openai.OpenAI | openai.AsyncOpenAI) -> str:
    """Where the last answer of a client came from, in words."""
    t = transport_of(c)
    if isinstance(t, ReplayTransport) and t.served:
        s = t.served[-1]
        if s.tier == "simulated":
            return f"simulated by the course: {s.note} (not live model output)"
        what = "authored for the course (not live model output)" if s.provenance == "authored" else "recorded from the real API"
        return f"replayed from cassettes/{s.cassette}.json #{s.index}, {what}; exact match"
    if isinstance(t, RecordTransport):
        return f"live answer, recorded into {t.path}"
    return "live answer from the OpenAI API"
