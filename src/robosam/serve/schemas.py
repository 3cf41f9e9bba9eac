"""Request and response bodies of the HTTP API (pydantic), which FastAPI turns into the OpenAPI schema.

Coordinates are pixels of the uploaded image, x right, y down; boxes ``[x1, y1, x2, y2]``; masks COCO RLE.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Number = Annotated[float, Field(allow_inf_nan=False)]
Point = Annotated[list[Number], Field(min_length=2, max_length=2, description="[x, y] in pixels")]
Box = Annotated[list[Number], Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels")]
MAX_PROMPTS = 64


class SegmentRequest(BaseModel):
    """Prompts for one image: points (with labels) for one object and/or boxes (one object each)."""

    model_config = ConfigDict(extra="forbid")

    points: list[Point] | None = Field(None, max_length=MAX_PROMPTS, description="clicks [[x, y], ...]")
    labels: list[Annotated[int, Field(ge=0, le=1)]] | None = Field(
        None, max_length=MAX_PROMPTS, description="1 positive, 0 negative, one per point (default all 1)"
    )
    boxes: list[Box] | None = Field(None, max_length=MAX_PROMPTS, description="one object per box")
    multimask: bool = Field(True, description="3 candidate masks per object instead of 1")
    mask_input: list[list[Number]] | None = Field(
        None,
        max_length=1024,
        description="(L, L) low-resolution logits of an earlier mask (ask for them with return_logits)",
    )
    return_logits: bool = Field(False, description="also return each mask's low-resolution logits")


class MaskRecord(BaseModel):
    segmentation: dict[str, Any] = Field(description="COCO RLE {size: [H, W], counts: str}")
    bbox: list[float] = Field(description="COCO [x, y, width, height]")
    area: int
    score: float
    object_id: int
    label: str | None = None
    data: dict[str, Any] | None = None
    logits: list[list[float]] | None = None


class SegmentResponse(BaseModel):
    image_id: str
    width: int
    height: int
    masks: list[MaskRecord]
    scores: list[float]
    boxes: list[list[float]] = Field(description="[x1, y1, x2, y2] per mask, x2 / y2 inclusive")
    timings: dict[str, float]


class ImageCreated(BaseModel):
    id: str
    width: int
    height: int
    encode_s: float = Field(description="encoder seconds (0 when the image was already embedded)")


class AutoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points_per_side: int = Field(16, ge=1, le=64)
    pred_iou_thresh: Number = Field(0.88, ge=0.0, le=1.0)
    stability_score_thresh: Number = Field(0.95, ge=0.0, le=1.0)
    min_mask_region_area: int = Field(0, ge=0)


class GroundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1, max_length=1000, description="what to find, e.g. 'red cup' or 'cup. bowl'"
    )
    box_threshold: Number = Field(0.3, ge=0.0, le=1.0, description="minimum detector confidence")
    text_threshold: Number = Field(0.25, ge=0.0, le=1.0, description="minimum matched-phrase confidence")
    max_detections: int | None = Field(None, ge=1, le=1000)


class ObjectPromptBody(BaseModel):
    """Prompt for one tracked object on a video frame."""

    model_config = ConfigDict(extra="forbid")

    obj_id: int = Field(ge=0, le=2**31 - 1)
    points: list[Point] | None = Field(None, max_length=MAX_PROMPTS)
    labels: list[Annotated[int, Field(ge=0, le=1)]] | None = Field(None, max_length=MAX_PROMPTS)
    box: Box | None = None


class VideoCreated(BaseModel):
    id: str


class TrackRecord(BaseModel):
    obj_id: int
    segmentation: dict[str, Any]
    bbox: list[float]
    area: int
    score: float
    presence: float
    visible: bool


class FrameResponse(BaseModel):
    session_id: str
    frame_index: int
    width: int
    height: int
    tracks: list[TrackRecord]


class Health(BaseModel):
    status: str
    model: str
    family: str
    device: str
    images: int
    sessions: int
    queue: int
    queue_max: int
    micro_batch: bool
