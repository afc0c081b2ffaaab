"""The Files API (``/v1/files``): uploads, their metadata and their bytes.

``client.files.create(file=..., purpose="batch")`` sends ``multipart/form-data`` (a ``purpose``
field and the file); the answer is a file object whose ``bytes`` is the size of what arrived and
whose id is derived from the content. ``client.files.retrieve(id)`` returns that object and
``client.files.content(id)`` the bytes (a batch's output and error files are read this way).
:class:`FileStore` keeps the files; :class:`labkit.endpoints.batches.BatchStore` extends it with
batches, and its authoring handlers serve both (see that module).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import endpoint

#: The purposes the API accepts for an upload.
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def hex_id(*parts: object, n: int = 32) -> str:
    """A stable hex id from the parts."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:n]


def api_error(status: int, message: str, param: str | None = None, code: str | None = None) -> tuple[int, dict[str, Any]]:
    """``(status, body)`` of an API error."""
    return status, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


@dataclass
class StoredFile:
    """An uploaded or generated file."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def object(self) -> dict[str, Any]:
        """The file object the API returns (``bytes`` is the content's size)."""
        return {"id": self.id, "object": "file", "bytes": len(self.content), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "expires_at": None,
                "status_details": None}


class FileStore:
    """Uploaded and generated files, answering as the Files API does at time ``now()`` (Unix seconds)."""

    def __init__(self, now: Callable[[], float], *, seed: str = "files") -> None:
        self.now = now
        self.seed = seed
        self.files: dict[str, StoredFile] = {}
        self._lock = threading.RLock()

    def _at(self) -> int:
        return int(self.now())

    def upload(self, form: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        """``POST /v1/files``, its multipart form read by :func:`labkit.replay.multipart_form`."""
        if not form or not isinstance(form.get("file"), dict):
            return api_error(400, "A file upload needs a 'file' part (multipart/form-data).", "file")
        purpose = str(form.get("purpose") or "")
        if purpose not in PURPOSES:
            return api_error(400, f"Invalid value for purpose: {purpose!r}. Supported values are: {', '.join(PURPOSES)}.", "purpose")
        part = form["file"]
        content = str(part.get("content", "")).encode("utf-8")
        with self._lock:
            file_id = "file-" + hex_id(self.seed, "file", len(self.files), part.get("filename"), content, n=22)
            stored = StoredFile(file_id, str(part.get("filename") or "upload"), purpose, content, self._at())
            self.files[file_id] = stored
        return 200, stored.object()

    def add(self, file_id: str, filename: str, purpose: str, content: bytes, at: int) -> str:
        """Keep a file the API itself wrote (a batch's output)."""
        with self._lock:
            self.files[file_id] = StoredFile(file_id, filename, purpose, content, at)
        return file_id

    def file(self, file_id: str) -> tuple[int, dict[str, Any]]:
        """``GET /v1/files/{id}``."""
        stored = self.files.get(file_id)
        if stored is None:
            return api_error(404, f"No such File object: {file_id}", "id")
        return 200, stored.object()

    def content(self, file_id: str) -> tuple[int, bytes | dict[str, Any]]:
        """``GET /v1/files/{id}/content``: the file's bytes."""
        stored = self.files.get(file_id)
        if stored is None:
            return api_error(404, f"No such File object: {file_id}", "id")
        return 200, stored.content


def route_files(store: FileStore, method: str, parts: list[str], raw: bytes) -> tuple[int, bytes | dict[str, Any]] | None:
    """Answer ``/v1/files...`` (``parts`` is the path after ``/v1``, split); None if it is not a files request."""
    from ..replay import multipart_form

    if not parts or parts[0] != "files":
        return None
    if method == "POST" and len(parts) == 1:
        return store.upload(multipart_form(raw))
    if method == "GET" and len(parts) == 2:
        return store.file(parts[1])
    if method == "GET" and len(parts) == 3 and parts[2] == "content":
        return store.content(parts[1])
    return api_error(404, f"Invalid URL ({method} /v1/{'/'.join(parts)}).")


# --------------------------------------------------------------------------- authoring


def _handler(r: Any, method: str, path: str, body: Any, raw: bytes, p: Any, seed: str) -> tuple[int, str, str]:
    """Files requests in a cassette source: served by the source's batch store (labkit.endpoints.batches)."""
    from .batches import render, store_of

    found = route_files(store_of(p), method, path.rstrip("/").split("/")[2:], raw)
    assert found is not None
    return render(found)


endpoint("POST", r"/v1/files")(_handler)
endpoint("GET", r"/v1/files/file-[0-9a-f]+")(_handler)
endpoint("GET", r"/v1/files/file-[0-9a-f]+/content")(_handler)
