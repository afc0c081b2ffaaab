"""The Conversations API (``/v1/conversations``): a durable home for a conversation's items.

``client.conversations.create()`` makes an id; ``responses.create(conversation=id, ...)`` reads the
items stored so far and appends its own input and output; ``conversations.items.list`` shows them;
``conversations.delete`` removes the conversation. The authoring :class:`~labkit.authoring.Author`
remembers what each conversation holds and passes it in ``Pending.data["items"]`` (a source may
also say it); ids are derived from the conversation id and each item's position, times are
:data:`~labkit.authoring.AUTHORED_AT`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import endpoint

if TYPE_CHECKING:
    from ..authoring import Pending, Renderer

JSON = "application/json"
_ID = r"conv_[0-9a-f]+"


def _json(payload: dict[str, Any]) -> tuple[int, str, str]:
    return 200, json.dumps(payload, indent=2, ensure_ascii=False), JSON


def _conversation(conv_id: str, metadata: Any) -> dict[str, Any]:
    from ..authoring import AUTHORED_AT

    return {"id": conv_id, "object": "conversation", "created_at": AUTHORED_AT, "metadata": metadata or {}}


def _conv_id(path: str) -> str:
    return path.split("/conversations/")[1].split("/")[0]


def stored_item(item: dict[str, Any], conv_id: str, index: int) -> dict[str, Any]:
    """An item as the API lists it: with an id and a status, text content as typed parts."""
    from ..authoring import _sid

    out = dict(item)
    if out.get("type") is None and "role" in out:
        out["type"] = "message"
    out.setdefault("id", f"{'msg' if out.get('type') == 'message' else 'item'}_{_sid(conv_id, index, n=48)}")
    if out.get("type") == "message":
        out.setdefault("status", "completed")
        content = out.get("content")
        kind = "output_text" if out.get("role") == "assistant" else "input_text"
        if isinstance(content, str):
            out["content"] = [{"type": kind, "text": content}]
    return out


@endpoint("POST", r"/v1/conversations")
def create(r: Renderer, method: str, path: str, body: Any, raw: bytes, p: Pending, seed: str) -> tuple[int, str, str]:
    from ..authoring import _sid

    body = body if isinstance(body, dict) else {}
    return _json(_conversation(f"conv_{_sid(seed, 'conv', n=48)}", body.get("metadata")))


@endpoint("GET", rf"/v1/conversations/{_ID}")
def retrieve(r: Renderer, method: str, path: str, body: Any, raw: bytes, p: Pending, seed: str) -> tuple[int, str, str]:
    return _json(_conversation(_conv_id(path), p.data.get("metadata")))


@endpoint("POST", rf"/v1/conversations/{_ID}")
def update(r: Renderer, method: str, path: str, body: Any, raw: bytes, p: Pending, seed: str) -> tuple[int, str, str]:
    return _json(_conversation(_conv_id(path), (body or {}).get("metadata")))


@endpoint("DELETE", rf"/v1/conversations/{_ID}")
def delete(r: Renderer, method: str, path: str, body: Any, raw: bytes, p: Pending, seed: str) -> tuple[int, str, str]:
    return _json({"id": _conv_id(path), "object": "conversation.deleted", "deleted": True})


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items, "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None, "has_more": False}


@endpoint("GET", rf"/v1/conversations/{_ID}/items")
def list_items(r: Renderer, method: str, path: str, body: Any, raw: bytes, p: Pending, seed: str) -> tuple[int, str, str]:
    conv_id = _conv_id(path)
    items = [stored_item(item, conv_id, i) for i, item in enumerate(p.data.get("items") or [])]
    if (p.data.get("query") or {}).get("order", "desc") == "desc":  # the API lists newest first by default
        items.reverse()
    limit = int((p.data.get("query") or {}).get("limit", 20))
    page = items[:limit]
    return _json({**_listing(page), "has_more": len(items) > limit})


@endpoint("POST", rf"/v1/conversations/{_ID}/items")
def add_items(r: Renderer, method: str, path: str, body: Any, raw: bytes, p: Pending, seed: str) -> tuple[int, str, str]:
    conv_id = _conv_id(path)
    start = len(p.data.get("items") or [])
    new = [stored_item(item, conv_id, start + i) for i, item in enumerate((body or {}).get("items") or [])]
    return _json(_listing(new))
