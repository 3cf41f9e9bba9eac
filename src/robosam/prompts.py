"""Validated prompts in pixel coordinates of the original image (x right, y down).

``parse_prompts`` turns what a user passes to ``Segmenter.predict`` into one ``ObjectPrompt`` per object;
``parse_batch_prompts`` does the same for the nested-list batch format of the transformers processors
(``input_points[image][object][point] = [x, y]``), where label -1 (and transformers' -10) marks padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robosam.errors import InputError

PADDING_LABELS = (-1, -10)


@dataclass
class ObjectPrompt:
    """Prompts for one object.

    points: (P, 2) float32 pixels (x, y) or None; labels: (P,) int64 (1 positive, 0 negative) or None;
    box: (4,) float32 pixels (x1, y1, x2, y2) or None.
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None

    @property
    def num_points(self) -> int:
        return 0 if self.points is None else int(self.points.shape[0])


def _as_float_array(value: Any, argument: str, expected: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(argument, expected, value) from None
    if not np.isfinite(array).all():
        raise InputError(argument, "finite numbers", value)
    return array


def _check_points(points: np.ndarray, image_hw: tuple[int, int], argument: str) -> None:
    height, width = image_hw
    inside = (
        (points[..., 0] >= 0) & (points[..., 0] < width) & (points[..., 1] >= 0) & (points[..., 1] < height)
    )
    if not inside.all():
        bad = points[~inside][0].tolist()
        raise InputError(
            argument, f"points inside the {width}x{height} image (0 <= x < {width}, 0 <= y < {height})", bad
        )


def _check_boxes(boxes: np.ndarray, image_hw: tuple[int, int], argument: str) -> np.ndarray:
    height, width = image_hw
    for box in boxes:
        x1, y1, x2, y2 = box.tolist()
        if x2 <= x1 or y2 <= y1:
            raise InputError(argument, "boxes (x1, y1, x2, y2) with x2 > x1 and y2 > y1", box.tolist())
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise InputError(argument, f"boxes overlapping the {width}x{height} image", box.tolist())
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    return clipped


def _check_labels(labels: np.ndarray, argument: str, allow_padding: bool) -> np.ndarray:
    allowed = (0, 1, *PADDING_LABELS) if allow_padding else (0, 1)
    if labels.size and (not np.all(np.mod(labels, 1) == 0) or not np.isin(labels, allowed).all()):
        bad = labels[~np.isin(labels, allowed)].tolist() or labels.tolist()
        what = "labels 1 (positive) or 0 (negative)" + (", -1 for padding" if allow_padding else "")
        raise InputError(argument, what, bad[:5])
    return labels.astype(np.int64)


def parse_prompts(
    image_hw: tuple[int, int],
    points: Any = None,
    labels: Any = None,
    box: Any = None,
) -> list[ObjectPrompt]:
    """User prompts to one ``ObjectPrompt`` per object.

    points: (P, 2) for one object or (O, P, 2) for O objects; labels: (P,) or (O, P), default all 1;
    box: (4,) for one object or (O, 4). With both points and boxes, O must agree.
    Returns [] when neither points nor box is given (a mask-only prompt).
    """
    point_array = label_array = box_array = None
    if points is not None:
        point_array = _as_float_array(points, "points", "a list of (x, y) pairs")
        if point_array.ndim == 2 and point_array.shape[1] == 2 and point_array.shape[0] > 0:
            point_array = point_array[None]
        if point_array.ndim != 3 or point_array.shape[2] != 2 or point_array.shape[1] == 0:
            raise InputError("points", "shape (P, 2) or (O, P, 2) with P >= 1", point_array)
        _check_points(point_array, image_hw, "points")
        if labels is None:
            label_array = np.ones(point_array.shape[:2], dtype=np.int64)
        else:
            label_array = _as_float_array(labels, "labels", "a list of 1/0 labels")
            if label_array.ndim == 1:
                label_array = label_array[None]
            if label_array.shape != point_array.shape[:2]:
                raise InputError("labels", f"one label per point, shape {point_array.shape[:2]}", label_array)
            label_array = _check_labels(label_array, "labels", allow_padding=False)
    elif labels is not None:
        raise InputError("labels", "labels only together with points", labels)
    if box is not None:
        box_array = _as_float_array(box, "box", "(x1, y1, x2, y2)")
        if box_array.ndim == 1:
            box_array = box_array[None]
        if box_array.ndim != 2 or box_array.shape[1] != 4 or box_array.shape[0] == 0:
            raise InputError("box", "shape (4,) or (O, 4) as (x1, y1, x2, y2)", box_array)
        box_array = _check_boxes(box_array, image_hw, "box")
    if point_array is not None and box_array is not None and point_array.shape[0] != box_array.shape[0]:
        raise InputError(
            "box", f"as many boxes as point groups ({point_array.shape[0]})", f"{box_array.shape[0]} boxes"
        )
    num_objects = max(
        0 if point_array is None else point_array.shape[0], 0 if box_array is None else box_array.shape[0]
    )
    return [
        ObjectPrompt(
            points=None if point_array is None else point_array[i].astype(np.float32),
            labels=None if label_array is None else label_array[i],
            box=None if box_array is None else box_array[i].astype(np.float32),
        )
        for i in range(num_objects)
    ]


def parse_batch_prompts(
    image_sizes: list[tuple[int, int]],
    input_points: Any = None,
    input_labels: Any = None,
    input_boxes: Any = None,
) -> list[list[ObjectPrompt]]:
    """Nested-list batch prompts to one list of ``ObjectPrompt`` per image.

    input_points[image][object][point] = [x, y] (ragged lists allowed); input_labels[image][object][point]
    in {1, 0, -1 (padding), -10 (transformers padding)}, default 1; input_boxes[image][object] = [x1, y1, x2, y2].
    Padding points are dropped, so each object keeps exactly its real points.
    """
    num_images = len(image_sizes)
    for name, value in (
        ("input_points", input_points),
        ("input_labels", input_labels),
        ("input_boxes", input_boxes),
    ):
        if value is not None and (
            not isinstance(value, (list, tuple, np.ndarray)) or len(value) != num_images
        ):
            raise InputError(name, f"one entry per image ({num_images})", value)
    if input_points is None and input_boxes is None:
        raise InputError("input_points/input_boxes", "at least one point or box per image", None)
    if input_labels is not None and input_points is None:
        raise InputError("input_labels", "labels only together with input_points", input_labels)
    batches: list[list[ObjectPrompt]] = []
    for i, image_hw in enumerate(image_sizes):
        objects_points = None if input_points is None else list(input_points[i])
        objects_boxes = None if input_boxes is None else list(input_boxes[i])
        num_objects = len(objects_points) if objects_points is not None else len(objects_boxes)
        if objects_boxes is not None and len(objects_boxes) != num_objects:
            raise InputError(
                f"input_boxes[{i}]", f"one box per object ({num_objects})", f"{len(objects_boxes)} boxes"
            )
        prompts = []
        for j in range(num_objects):
            prompt = ObjectPrompt()
            if objects_points is not None:
                argument = f"input_points[{i}][{j}]"
                pts = _as_float_array(objects_points[j], argument, "a list of [x, y] points").reshape(-1, 2)
                if input_labels is None:
                    lab = np.ones(len(pts), dtype=np.int64)
                else:
                    lab = _as_float_array(input_labels[i][j], f"input_labels[{i}][{j}]", "a list of labels")
                    lab = _check_labels(lab.reshape(-1), f"input_labels[{i}][{j}]", allow_padding=True)
                    if lab.shape[0] != pts.shape[0]:
                        raise InputError(
                            f"input_labels[{i}][{j}]", f"one label per point ({len(pts)})", lab.tolist()
                        )
                real = ~np.isin(lab, PADDING_LABELS)
                pts, lab = pts[real], lab[real]
                if len(pts):
                    _check_points(pts, image_hw, argument)
                    prompt.points, prompt.labels = pts.astype(np.float32), lab
            if objects_boxes is not None:
                argument = f"input_boxes[{i}][{j}]"
                box = _as_float_array(objects_boxes[j], argument, "[x1, y1, x2, y2]")
                if box.shape != (4,):
                    raise InputError(argument, "[x1, y1, x2, y2]", box)
                prompt.box = _check_boxes(box[None], image_hw, argument)[0].astype(np.float32)
            if prompt.points is None and prompt.box is None:
                raise InputError(
                    f"input_points[{i}][{j}]", "at least one real (non-padding) point or a box", None
                )
            prompts.append(prompt)
        batches.append(prompts)
    return batches
