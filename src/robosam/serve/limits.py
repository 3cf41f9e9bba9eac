"""Safety limits: request body size, image size before decoding, the API key, and the bounded job queue."""

from __future__ import annotations

import hmac
import io
import json
from typing import Any

import numpy as np
from fastapi import HTTPException
from PIL import Image, UnidentifiedImageError

from robosam.errors import InputError
from robosam.io import load_image

# only formats decoded in-process by Pillow itself (no external programs, no vector formats)
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")


class Busy(Exception):
    """The job queue is full: answered as 503 with ``Retry-After``."""

    def __init__(self, retry_after_s: int):
        super().__init__(f"the server is busy (queue full); retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Admission:
    """Counts model jobs admitted (running or waiting) and refuses past ``limit``.

    Used only from the event loop thread, so a plain counter is enough.
    """

    def __init__(self, limit: int, retry_after_s: int = 1):
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.pending = 0

    def __enter__(self) -> Admission:
        if self.pending >= self.limit:
            raise Busy(self.retry_after_s)
        self.pending += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pending -= 1


def keys_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison of an API key."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def too_large(argument: str, expected: str, got: Any) -> HTTPException:
    return HTTPException(status_code=413, detail=str(InputError(argument, expected, got)))


class BodyTooLarge(HTTPException):
    """A request body over the limit (413); an HTTPException so every layer answers it as such."""

    def __init__(self, max_bytes: int, got: str):
        super().__init__(413, str(InputError("body", f"at most {max_bytes} bytes", f"{got} bytes")))


class BodyLimitMiddleware:
    """Pure ASGI middleware: refuses request bodies over ``max_bytes`` with 413, from the Content-Length
    header before reading, or while a chunked body streams in, so an oversized upload is never held.
    (Starlette's own limiter answers a plain "Content Too Large"; this one names the limit, as the library's
    errors do.)"""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            error = BodyTooLarge(self.max_bytes, length.decode("latin-1")[:40])
            body = json.dumps({"detail": error.detail}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes, f"more than {self.max_bytes}")
            return message

        await self.app(scope, limited_receive, send)


def decode_image(data: bytes, max_pixels: int, argument: str = "file") -> np.ndarray:
    """Image file bytes to RGB uint8 (H, W, 3). The size is read from the header and checked against
    ``max_pixels`` before any pixel is decoded (decompression bombs never expand); unreadable or truncated
    files raise ``InputError``, oversized ones an HTTP 413."""
    if not data:
        raise InputError(argument, "image file bytes (JPEG, PNG, ...)", "an empty body")
    try:
        pil = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        width, height = pil.size
        if width * height > max_pixels:
            raise too_large(argument, f"an image of at most {max_pixels} pixels", f"{width}x{height}")
        pil.load()
    except Image.DecompressionBombError as error:
        raise too_large(argument, f"an image of at most {max_pixels} pixels", str(error)) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, ImportError) as error:
        # ImportError: packages that wrap Pillow (ultralytics retries unknown files with an optional HEIF
        # decoder) fail that way on garbage; it is still the client's unreadable file, not a server error
        raise InputError(
            argument, f"a readable, complete image file ({', '.join(IMAGE_FORMATS)})", None, detail=str(error)
        ) from error
    if width == 0 or height == 0:
        raise InputError(argument, "a non-empty image", f"{width}x{height}")
    return load_image(pil, argument=argument)
