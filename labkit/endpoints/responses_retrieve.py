"""Retrieving a stored response (``GET /v1/responses/{id}``), as a background response is read back.

``client.responses.create(background=True, ...)`` answers at once with a ``queued`` response; when
the work is done (OpenAI then sends a ``response.completed`` webhook), ``client.responses.retrieve(id)``
returns it completed. The source passes the create request's body in ``Pending.data["request"]`` and
the id it was given in ``Pending.data["id"]``; the answer is rendered for that request (usage counted
as for the create), with that id, ``background: true`` and ``status: "completed"``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import endpoint

if TYPE_CHECKING:
    from ..authoring import Pending, Renderer


@endpoint("GET", r"/v1/responses/resp_[0-9a-f]+")
def retrieve(r: Renderer, method: str, path: str, body: Any, raw: bytes, p: Pending, seed: str) -> tuple[int, str, str]:
    request = {k: v for k, v in dict(p.data.get("request") or {}).items() if k not in ("stream", "background")}
    if not request.get("model"):
        raise RuntimeError("GET /v1/responses/{id}: say which request it answers, a.call(..., data={'request': {...}})")
    status, payload, ctype = r._responses(request, p, seed)
    answer = json.loads(payload)
    answer.update(id=p.data.get("id") or path.rsplit("/", 1)[1], background=True, status="completed")
    return status, json.dumps(answer, indent=2, ensure_ascii=False), ctype
