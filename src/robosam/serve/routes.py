"""The HTTP routes: thin handlers that parse, call the engine (the library) and answer JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from robosam.serve.limits import keys_match
from robosam.serve.schemas import (
    AutoRequest,
    FrameResponse,
    GroundRequest,
    Health,
    ImageCreated,
    SegmentRequest,
    SegmentResponse,
    VideoCreated,
)
from robosam.serve.uploads import parse_prompts_field, read_upload, upload_body

_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)
_PROMPTS_FIELD = {
    "prompts": {
        "type": "string",
        "description": 'JSON list of {"obj_id": 1, "points": [[x, y]], "labels": [1], "box": [x1, y1, x2, y2]}',
    }
}


def engine_of(request: Request):  # noqa: ANN201 - the app's Engine
    return request.app.state.engine


def require_key(
    request: Request,
    key: Annotated[str | None, Depends(_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the configured API key came in ``X-API-Key`` or ``Authorization: Bearer``."""
    expected = request.app.state.engine.config.api_key
    if expected is None:
        return
    given = key if key is not None else (bearer.credentials if bearer is not None else None)
    if not keys_match(given, expected):
        raise HTTPException(
            401,
            "api key: expected the server's key in the X-API-Key header (or Authorization: Bearer)",
            headers={"WWW-Authenticate": "Bearer"},
        )


open_router = APIRouter()
router = APIRouter(dependencies=[Depends(require_key)])


@open_router.get("/health", response_model=Health, tags=["service"])
async def health(request: Request) -> dict:
    """Liveness and load; answered on the event loop, never behind model work, and open without a key."""
    engine = engine_of(request)
    return {
        "status": "ok",
        "model": engine.source,
        "family": engine.segmenter.adapter.name,
        "device": engine.device,
        "images": len(engine.images),
        "sessions": len(engine.sessions),
        "queue": engine.admission.pending,
        "queue_max": engine.admission.limit,
        "micro_batch": engine.batcher is not None,
    }


@router.get("/models", tags=["service"])
async def models(request: Request) -> dict:
    """The loaded segmenter and the presets this server could be started with."""
    from robosam.models import PRESETS

    engine = engine_of(request)
    adapter = engine.segmenter.adapter
    return {
        "segmenter": {
            "source": engine.source,
            "family": adapter.name,
            "input_size": int(adapter.input_size),
            "device": engine.device,
        },
        "tracker_loaded": engine.sessions.tracker_loaded,
        "presets": [
            {"name": p.name, "kinds": list(p.kinds), "family": p.family, "input_size": p.input_size}
            for p in PRESETS.values()
        ],
    }


@router.post(
    "/images", status_code=201, response_model=ImageCreated, tags=["images"], openapi_extra=upload_body()
)
async def add_image(request: Request) -> dict:
    """Upload an image (multipart field ``file``, or raw bytes with an image content type). It is embedded
    once; the id (a content hash) names it in later calls, until it idles out or the cache drops it."""
    data, _ = await read_upload(request)
    return await engine_of(request).run(engine_of(request).add_image, data)


@router.delete("/images/{image_id}", status_code=204, tags=["images"])
async def delete_image(request: Request, image_id: str) -> Response:
    if engine_of(request).images.pop(image_id) is None:
        engine_of(request).image(image_id)  # raises the 404
    return Response(status_code=204)


@router.post("/images/{image_id}/segment", response_model=SegmentResponse, tags=["images"])
async def segment(request: Request, image_id: str, body: SegmentRequest) -> dict:
    """Masks for clicks and boxes on an uploaded image: COCO RLE masks, scores and boxes."""
    return await engine_of(request).segment(image_id, body)


@router.post("/images/{image_id}/auto", response_model=SegmentResponse, tags=["images"])
async def auto(request: Request, image_id: str, body: Annotated[AutoRequest | None, Body()] = None) -> dict:
    """Masks for everything in the image (a grid of clicks, as Meta's automatic mask generator)."""
    return await engine_of(request).auto(image_id, body or AutoRequest())


@router.post(
    "/images/{image_id}/ground",
    response_model=SegmentResponse,
    tags=["images"],
    responses={501: {"description": "no detector available to this server"}},
)
async def ground(request: Request, image_id: str, body: GroundRequest) -> dict:
    """Masks of everything a text names (an open-vocabulary detector finds boxes, SAM segments them); each
    mask's ``label`` is the matched phrase and its ``score`` the detector's confidence."""
    return await engine_of(request).ground(image_id, body)


@router.post("/videos", status_code=201, response_model=VideoCreated, tags=["videos"])
async def create_video(request: Request) -> dict:
    """Open a live tracking session; the tracker model loads on the first one."""
    engine = engine_of(request)
    return {"id": await engine.run(engine.sessions.create)}


@router.post(
    "/videos/{session_id}/frames",
    response_model=FrameResponse,
    tags=["videos"],
    openapi_extra=upload_body(_PROMPTS_FIELD),
)
async def add_frame(request: Request, session_id: str) -> dict:
    """Track the next frame (multipart ``file`` plus optional ``prompts`` added on this frame, or raw image
    bytes); answers every object's track on it."""
    engine = engine_of(request)
    engine.sessions.get(session_id)
    data, fields = await read_upload(request)
    prompts = parse_prompts_field(fields.get("prompts"))
    return await engine.run(engine.sessions.step, session_id, data, prompts)


@router.delete("/videos/{session_id}", status_code=204, tags=["videos"])
async def delete_video(request: Request, session_id: str) -> Response:
    engine_of(request).sessions.delete(session_id)
    return Response(status_code=204)
