"""Request bodies -> named byte strings, held in memory only: a multipart upload (field
``file``) or a JSON list of base64 images. The body is read against the size limit as it
streams in, so an oversized upload is refused without being stored."""
from __future__ import annotations

import base64
import binascii
import json

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request


class BadRequest(Exception):
    """A client error: ``status`` (4xx) and a message naming the problem."""

    def __init__(self, status: int, message: str, code: str = "bad_request"):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class _MemoryParser(MultiPartParser):
    """Starlette's multipart parser with its spool never rolling over to a temporary file
    (the body is size-checked before it gets here)."""

    def __init__(self, headers, stream, limit: int):
        super().__init__(headers, stream, max_files=1, max_fields=16, max_part_size=limit)
        self.spool_max_size = limit + 1


async def _limited(request: Request, limit: int):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"upload is {int(declared) / 1e6:.1f} MB, over the "
                              f"{limit / 1e6:.1f} MB limit", "too_large")
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise BadRequest(413, f"upload is over the {limit / 1e6:.1f} MB limit", "too_large")
        yield chunk


async def read_uploads(request: Request, limit: int, max_images: int) -> list[tuple[str, bytes]]:
    """[(name, data)] from a multipart ``file`` field or a JSON body: a list of base64
    strings, or {"images": [...]} whose items are strings or {"name", "data"} objects."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await _MemoryParser(request.headers, _limited(request, limit), limit).parse()
        except MultiPartException as exc:
            raise BadRequest(400, f"malformed multipart body: {exc.message}") from None
        f = form.get("file")
        if not isinstance(f, UploadFile):
            raise BadRequest(400, "multipart upload has no file in the field 'file'")
        data = await f.read()
        await f.close()
        return [(f.filename or "upload", data)]
    if ctype.startswith("application/json"):
        body = b"".join([c async for c in _limited(request, limit)])
        return _json_images(body, max_images)
    raise BadRequest(415, "send the image as multipart/form-data (field 'file') or as JSON "
                          "(a list of base64 strings)", "unsupported_media_type")


def _json_images(body: bytes, max_images: int) -> list[tuple[str, bytes]]:
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest(400, "body is not valid JSON") from None
    items = obj.get("images") if isinstance(obj, dict) else obj
    if not isinstance(items, list) or not items:
        raise BadRequest(400, "JSON body must be a non-empty list of base64 images "
                              "(or {\"images\": [...]})")
    if len(items) > max_images:
        raise BadRequest(413, f"{len(items)} images in one request, over the limit of "
                              f"{max_images}", "too_many_images")
    out = []
    for i, item in enumerate(items):
        name, b64 = f"image{i}", item
        if isinstance(item, dict):
            name, b64 = str(item.get("name", name)), item.get("data")
        if not isinstance(b64, str):
            raise BadRequest(400, f"{name}: expected a base64 string")
        if b64.startswith("data:"):
            b64 = b64.partition(",")[2]
        try:
            out.append((name, base64.b64decode(b64, validate=True)))
        except (binascii.Error, ValueError):
            raise BadRequest(400, f"{name}: not valid base64") from None
    return out
