"""Plain result dataclasses returned by the tasks, with conversions to the field's formats."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.masks import box_to_xywh, decode_rle, encode_rle, encode_rles_with_stats, mask_to_box


@dataclass
class MaskResult:
    """Masks on one image, in the style of supervision's ``Detections``: parallel per-mask arrays.

    masks: (N, H, W) bool at the original image resolution, or None for a result decoded without
        upscaling (``Segmenter.decode(..., upscale=False)``) until ``Segmenter.upscale`` fills it.
    scores: (N,) float32 predicted IoU (or detector confidence) per mask.
    logits: (N, L, L) float32 low-resolution mask logits in the model's input frame (L = 256 for the
        released models); pass one (``result.best().logits``) back as ``mask_input`` to refine it.
    object_ids: (N,) int64 index of the prompted object each mask belongs to (all 0 for one object).
    labels: (N,) str names (a detector's matched phrase), or None.
    track_ids: (N,) int64 track identities across frames, or None.
    data: free per-mask arrays, each of length N (``point_coords``, ``stability_score``, ...).
    timings: seconds per stage of the call that made it (``encoder_s``, ``decoder_s``, ``postprocess_s``).
    Boxes are ``(x1, y1, x2, y2)`` with x2, y2 the last foreground column and row (inclusive), as in
    supervision and Meta's code; COCO ``bbox`` is ``[x1, y1, x2 - x1, y2 - y1]``.
    """

    masks: np.ndarray | None
    scores: np.ndarray
    logits: np.ndarray
    object_ids: np.ndarray | None = None
    labels: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.object_ids is None:
            self.object_ids = np.zeros(len(self.scores), dtype=np.int64)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=object)
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def replace(self, **changes: Any) -> MaskResult:
        """A copy with some fields replaced (like ``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def best(self) -> MaskResult:
        """The highest-scoring mask of each object (one mask for a single-object prompt)."""
        keep = [
            max(np.flatnonzero(self.object_ids == obj), key=lambda i: self.scores[i])
            for obj in np.unique(self.object_ids)
        ]
        return self[np.asarray(keep, dtype=np.int64)]

    def __getitem__(self, index: int | slice | np.ndarray) -> MaskResult:
        index = slice(index, index + 1) if isinstance(index, (int, np.integer)) else index

        def take(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[index]

        return MaskResult(
            masks=take(self.masks),
            scores=self.scores[index],
            logits=self.logits[index],
            object_ids=self.object_ids[index],
            labels=take(self.labels),
            track_ids=take(self.track_ids),
            data={key: value[index] for key, value in self.data.items()},
            timings=dict(self.timings),
        )

    def _require_masks(self) -> np.ndarray:
        if self.masks is None:
            raise InputError(
                "result", "a result with masks (decode with upscale=True, or Segmenter.upscale)", None
            )
        return self.masks

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) float32 tight boxes ``(x1, y1, x2, y2)`` in pixels, x2 / y2 inclusive."""
        return mask_to_box(self._require_masks())

    @property
    def areas(self) -> np.ndarray:
        """(N,) int64 pixel count per mask."""
        return self._require_masks().sum(axis=(1, 2), dtype=np.int64)

    def to_coco(self) -> list[dict[str, Any]]:
        """One dict per mask: ``segmentation`` (COCO RLE), ``bbox`` (x, y, w, h), ``area``, ``score``."""
        rles, areas, boxes = encode_rles_with_stats(self._require_masks())
        return [
            {"segmentation": rle, "bbox": box_to_xywh(box), "area": int(area), "score": float(score)}
            for rle, score, box, area in zip(rles, self.scores, boxes, areas)
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: per mask COCO RLE, bbox, area, score, object id (and label, track id, data),
        plus the low-resolution logits when ``masks`` is None (so nothing is lost)."""
        records = self.to_coco() if self.masks is not None else [{"score": float(s)} for s in self.scores]
        for i, record in enumerate(records):
            record["object_id"] = int(self.object_ids[i])
            if self.labels is not None:
                record["label"] = str(self.labels[i])
            if self.track_ids is not None:
                record["track_id"] = int(self.track_ids[i])
            if self.data:
                record["data"] = {key: _jsonable(value[i]) for key, value in self.data.items()}
        out: dict[str, Any] = {"masks": records, "timings": dict(self.timings)}
        if self.masks is None:
            out["logits"] = self.logits.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaskResult:
        """The inverse of ``to_dict`` (masks decoded from RLE; logits empty when the dict holds masks)."""
        if not isinstance(data, dict) or not isinstance(data.get("masks"), list):
            raise InputError("data", "a dict with a 'masks' list (from MaskResult.to_dict)", data)
        records = data["masks"]
        has_masks = all("segmentation" in r for r in records) and "logits" not in data
        masks = np.stack([decode_rle(r["segmentation"]) for r in records]) if has_masks and records else None
        if has_masks and not records:
            masks = np.zeros((0, 0, 0), dtype=bool)
        logits = np.asarray(data.get("logits", np.zeros((len(records), 0, 0))), dtype=np.float32)
        keys = {key for r in records for key in r.get("data", {})}
        return cls(
            masks=masks,
            scores=np.asarray([r["score"] for r in records], dtype=np.float32),
            logits=logits,
            object_ids=np.asarray([r.get("object_id", 0) for r in records], dtype=np.int64),
            labels=np.asarray([r["label"] for r in records], dtype=object)
            if records and all("label" in r for r in records)
            else None,
            track_ids=np.asarray([r["track_id"] for r in records], dtype=np.int64)
            if records and all("track_id" in r for r in records)
            else None,
            data={key: np.asarray([r["data"][key] for r in records]) for key in sorted(keys)},
            timings=dict(data.get("timings", {})),
        )

    def to_supervision(self) -> Any:
        """A ``supervision.Detections`` (needs the optional ``supervision`` package): xyxy, mask, confidence,
        class_id (object ids), tracker_id (track ids) and data (``class_name`` from labels, plus ``data``)."""
        try:
            import supervision as sv
        except ImportError:
            raise InputError(
                "supervision", "the supervision package (pip install robosam[supervision])", None
            ) from None
        data = {key: np.asarray(value) for key, value in self.data.items()}
        if self.labels is not None:
            data["class_name"] = np.asarray(self.labels, dtype=str)
        return sv.Detections(
            xyxy=self.boxes.astype(np.float32),
            mask=self._require_masks(),
            confidence=self.scores.astype(np.float32),
            class_id=self.object_ids.astype(int),
            tracker_id=None if self.track_ids is None else self.track_ids.astype(int),
            data=data,
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class Track:
    """One tracked object on one video frame.

    obj_id: the caller's object id. mask: (H, W) bool at the frame's original resolution.
    score: predicted IoU of the mask. presence: probability in [0, 1] that the object is in the frame (the
    model's object score through a sigmoid). visible: ``presence > 0.5`` (the model's own occlusion call).
    box: (4,) float32 ``(x1, y1, x2, y2)`` tight box of the mask (zeros when empty), same convention as
    ``MaskResult.boxes``. logits: optional (L, L) low-resolution mask logits.
    """

    obj_id: int
    mask: np.ndarray
    score: float
    presence: float
    visible: bool
    box: np.ndarray
    logits: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: obj_id, COCO RLE segmentation, bbox (x, y, w, h), area, score, presence, visible."""
        return {
            "obj_id": int(self.obj_id),
            "segmentation": encode_rle(self.mask),
            "bbox": box_to_xywh(self.box),
            "area": int(self.mask.sum()),
            "score": float(self.score),
            "presence": float(self.presence),
            "visible": bool(self.visible),
        }
