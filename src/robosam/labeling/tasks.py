"""What labeling does to one image: a picklable task description and the labelers it builds.

A ``LabelTask`` travels to workers (Ray actors) as plain values; each worker calls ``build()`` once to load
its own model replica. A labeler turns an RGB image into COCO annotations (RLE masks, bbox, area, score,
category_id) without ids; the shard writer numbers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from robosam.errors import InputError
from robosam.labeling.inputs import LabelInput
from robosam.models import ModelSpec
from robosam.results import MaskResult

TASKS = ("auto", "ground", "boxes")


class Labeler(Protocol):
    categories: list[dict[str, Any]]

    def label(self, rgb: np.ndarray, item: LabelInput) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class LabelTask:
    """task: ``auto`` (every object), ``ground`` (objects named in ``text``) or ``boxes`` (a mask per box of
    ``boxes``: file name -> list of ``x1, y1, x2, y2``). model: the segmenter. auto_options: AutoMasker knobs.
    detector: the text task's detector preset."""

    task: str
    model: ModelSpec
    boxes: tuple[tuple[str, tuple[tuple[float, ...], ...]], ...] = ()
    text: str | None = None
    detector: str | None = None
    auto_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError("--task", f"one of {', '.join(TASKS)}", self.task)
        if self.task == "boxes" and not self.boxes:
            raise InputError("--boxes", "a boxes file for --task boxes", None)
        if self.task == "ground" and not (self.text or "").strip():
            raise InputError("--text", "a phrase for --task ground (e.g. 'cup. bowl')", self.text)

    def identity(self) -> dict[str, Any]:
        """What must match for a rerun to continue this job."""
        return {"task": self.task, "model": self.model.source, "boxes": len(self.boxes), "text": self.text,
                "detector": self.detector, "auto_options": [list(o) for o in self.auto_options]}  # fmt: skip

    def build(self) -> Labeler:
        from robosam.segmenter import Segmenter

        segmenter = Segmenter(self.model)
        if self.task == "boxes":
            return BoxesLabeler(segmenter, {name: np.asarray(b, np.float32) for name, b in self.boxes})
        if self.task == "auto":
            return AutoLabeler(segmenter, dict(self.auto_options))
        from robosam.grounding import TextSegmenter

        text_segmenter = (
            TextSegmenter(segmenter, detector=self.detector) if self.detector else TextSegmenter(segmenter)
        )
        return GroundLabeler(text_segmenter, self.text or "")


def annotations(result: MaskResult, category_ids: list[int]) -> list[dict[str, Any]]:
    """A result's masks as COCO annotations (no ids yet)."""
    return [{**record, "category_id": int(c)} for record, c in zip(result.to_coco(), category_ids)]


class BoxesLabeler:
    """One mask per given box, all boxes of an image in one decoder call."""

    categories = [{"id": 1, "name": "object"}]

    def __init__(self, segmenter: Any, boxes: dict[str, np.ndarray]):
        self.segmenter, self.boxes = segmenter, boxes

    def label(self, rgb: np.ndarray, item: LabelInput) -> list[dict[str, Any]]:
        boxes = self.boxes.get(item.file_name)
        if boxes is None or not len(boxes):
            return []
        result = self.segmenter.decode(self.segmenter.embed(rgb), box=boxes, multimask=False)
        return annotations(result, [1] * len(result))


class AutoLabeler:
    """Every object: automatic mask generation (``robosam.AutoMasker``)."""

    categories = [{"id": 1, "name": "object"}]

    def __init__(self, segmenter: Any, options: dict[str, Any]):
        from robosam.automatic import AutoMasker

        self.masker = AutoMasker(segmenter, **options)

    def label(self, rgb: np.ndarray, item: LabelInput) -> list[dict[str, Any]]:
        result = self.masker.generate(rgb)
        return annotations(result, [1] * len(result))


class GroundLabeler:
    """Objects named in the text, one category per phrase (``robosam.TextSegmenter``)."""

    def __init__(self, text_segmenter: Any, text: str):
        self.segmenter = text_segmenter
        self.text = text
        phrases = [p.strip() for p in text.split(".") if p.strip()]
        self.categories = [{"id": i, "name": p} for i, p in enumerate(phrases, 1)]
        self._ids = {c["name"]: c["id"] for c in self.categories}

    def label(self, rgb: np.ndarray, item: LabelInput) -> list[dict[str, Any]]:
        result = self.segmenter.segment(rgb, self.text)
        labels = [] if result.labels is None else [str(label) for label in result.labels]
        return annotations(result, [self._ids.get(label, 0) for label in labels])


def read_boxes_file(path: str) -> tuple[tuple[str, tuple[tuple[float, ...], ...]], ...]:
    """A boxes file: JSON ``{file_name: [[x1, y1, x2, y2], ...]}`` or COCO (``images`` + ``annotations`` with
    ``bbox`` as x, y, w, h). Returns hashable ``((file_name, boxes), ...)``."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError("--boxes", "a readable JSON boxes file", str(path), detail=str(error)) from None
    by_name: dict[str, list[tuple[float, ...]]] = {}
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        names = {im["id"]: im["file_name"] for im in data["images"]}
        for ann in data["annotations"]:
            x, y, w, h = (float(v) for v in ann["bbox"])
            by_name.setdefault(names[ann["image_id"]], []).append((x, y, x + w, y + h))
    elif isinstance(data, dict):
        for name, boxes in data.items():
            by_name[str(name)] = [tuple(float(v) for v in box) for box in boxes]
    else:
        raise InputError(
            "--boxes", "{file_name: [[x1, y1, x2, y2], ...]} or a COCO JSON", type(data).__name__
        )
    bad = [b for boxes in by_name.values() for b in boxes if len(b) != 4]
    if bad:
        raise InputError("--boxes", "boxes of 4 numbers (x1, y1, x2, y2)", bad[0])
    return tuple(sorted((name, tuple(boxes)) for name, boxes in by_name.items()))
