"""Compaction (``POST /v1/responses/compact``): a long conversation folded into one opaque item.

The API answers with every user message of the input followed by one ``compaction`` item whose
``encrypted_content`` stands for the rest (assistant turns, tool calls and their outputs). The
source says, as the reply text, what that summary holds; its tokens are the answer's output
tokens. Authored ``encrypted_content`` is opaque seeded text, :data:`CHARS_PER_TOKEN` characters
per token of the summary, which is how :class:`~labkit.authoring.Renderer` counts a compaction item
when it comes back as input (the real API bills the compacted context, not the characters).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

from . import endpoint

if TYPE_CHECKING:
    from ..authoring import Pending, Renderer

#: Characters of authored ``encrypted_content`` per token of the compacted summary.
CHARS_PER_TOKEN = 4


def opaque(seed: str, tokens: int) -> str:
    """Seeded base64 text of ``CHARS_PER_TOKEN * tokens`` characters (starts like the API's: ``gAAAAA``)."""
    want = max(CHARS_PER_TOKEN * tokens, 8)
    raw = b""
    while len(raw) * 4 // 3 < want:
        raw += hashlib.sha256(seed.encode() + len(raw).to_bytes(4, "big")).digest()
    return ("gAAAAA" + base64.urlsafe_b64encode(raw).decode())[:want]


@endpoint("POST", r"/v1/responses/compact")
def compact(r: Renderer, method: str, path: str, body: Any, raw: bytes, p: Pending, seed: str) -> tuple[int, str, str]:
    from ..authoring import AUTHORED_AT, _sid
    from ..tokens import count_tokens

    body = body if isinstance(body, dict) else {}
    model = str(body.get("model", ""))
    inp = body.get("input") or []
    items = [{"type": "message", "role": "user", "content": inp}] if isinstance(inp, str) else list(inp)
    users = []
    for i, item in enumerate([*p.context, *items]):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            parts = [{"type": "input_text", "text": content}] if isinstance(content, str) else content
            users.append({"id": f"msg_{_sid(seed, 'user', i, n=48)}", "type": "message", "status": "completed",
                          "role": "user", "content": parts})
    summary = p.reply or ""
    out = count_tokens(summary, model) if summary else 0
    prompt, _, _, cached, written = r._usage_numbers(body, p, "", seed)
    r._out_tokens = out
    item = {"id": f"cmp_{_sid(seed, 'cmp', n=48)}", "type": "compaction", "encrypted_content": opaque(seed, out)}
    payload = {
        "id": f"resp_{_sid(seed, 'resp', n=48)}", "object": "response.compaction", "created_at": AUTHORED_AT,
        "output": [*users, item],
        "usage": {
            "input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "output_tokens": out, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + out,
        },
    }
    return 200, json.dumps(payload, indent=2, ensure_ascii=False), "application/json"
