"""Reading an uploaded image (and form fields) from a request: multipart field ``file``, or the raw bytes
with an image content type."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from robosam.errors import InputError
from robosam.serve.schemas import ObjectPromptBody

RAW_TYPES = ("image/", "application/octet-stream")
_PROMPTS = TypeAdapter(list[ObjectPromptBody])


def upload_body(extra_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for an image upload (FastAPI's ``openapi_extra``)."""
    properties: dict[str, Any] = {"file": {"type": "string", "format": "binary"}, **(extra_fields or {})}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": properties, "required": ["file"]}
                },
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


async def read_upload(request: Request) -> tuple[bytes, dict[str, str]]:
    """(image bytes, other text form fields). 415 for other content types, 400 for a form without ``file``."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=8)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InputError("file", "a multipart form field 'file' holding the image", None)
        data = await upload.read()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        await form.close()
        return data, fields
    if content_type.startswith(RAW_TYPES):
        return await request.body(), {}
    raise HTTPException(
        415,
        str(
            InputError(
                "Content-Type", "multipart/form-data (field 'file') or an image/* body", content_type or None
            )
        ),
    )


def parse_prompts_field(text: str | None) -> list[ObjectPromptBody]:
    """The ``prompts`` form field: a JSON list of ``{"obj_id", "points", "labels", "box"}``."""
    if text is None or not text.strip():
        return []
    try:
        return _PROMPTS.validate_python(json.loads(text))
    except (ValueError, ValidationError) as error:
        raise InputError(
            "prompts",
            'a JSON list of {"obj_id": int, "points": [[x, y]], "labels": [1], "box": [x1, y1, x2, y2]}',
            text,
            detail=str(error).splitlines()[0][:200],
        ) from None
