"""Prompt protocols: how a ground-truth object becomes prompts, and how a model's answer is scored.

Image protocols (one object at a time, the image already set on the predictor):
- ``center``: one positive click at the object's most interior pixel.
- ``random-point``: one positive click at a uniformly random pixel of the object.
- ``point-noise``: the centre click moved by Gaussian noise (``noise_px`` standard deviation, pixels).
- ``box``: the tight ground-truth box, each side moved by uniform noise of up to ``jitter_px`` pixels.
- ``clicks``: iterative click simulation. Each next click goes to the most interior pixel of the largest
  error region (positive in a missed region, negative in a false one), with the previous low-resolution
  logits fed back; gives IoU after every click up to ``max_clicks`` (20) and the clicks needed to reach each
  IoU threshold (NoC@85, NoC@90; ``max_clicks`` when never reached).

Video protocols (semi-supervised, with a tracker): ``video-mask`` gives the first-frame mask of every
object, ``video-click`` its first-frame centre click; the tracker propagates and the frames are scored with
the DAVIS J and F (first and last frames left out, as DAVIS does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import cv2
import numpy as np

from robosam.data import VideoSample
from robosam.errors import InputError
from robosam.evaluation.davis import ObjectScores, score_masks
from robosam.evaluation.metrics import boundary_f1, dice, iou
from robosam.masks import mask_to_box
from robosam.results import MaskResult

TIMING_KEYS = ("encoder_s", "decoder_s", "postprocess_s")


@runtime_checkable
class ImagePredictor(Protocol):
    """What the image runners need from a model (``robosam.Segmenter`` satisfies it).

    ``last_timings``: seconds of the last call per stage, keys ``encoder_s`` (0.0 when the embedding was
    cached), ``decoder_s``, ``postprocess_s``.
    """

    last_timings: dict[str, float]

    def set_image(self, image: Any) -> Any: ...

    def predict(
        self,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask: bool = True,
    ) -> MaskResult: ...


@runtime_checkable
class VideoSession(Protocol):
    """One tracking session over a video (the shape of ``robosam.VideoTracker.session(...)``)."""

    def add(
        self, frame: int, obj_id: int, points: Any = None, labels: Any = None, mask: Any = None
    ) -> Any: ...

    def propagate(self) -> Iterable[tuple[int, dict[int, Any]]]:
        """Yields ``(frame_index, {obj_id: track})``; a track is a (H, W) mask or has a ``.mask``."""
        ...


@runtime_checkable
class VideoTracker(Protocol):
    """A semi-supervised video object segmenter: ``session(frames_folder)`` opens a :class:`VideoSession`."""

    def session(self, source: Any) -> AbstractContextManager[VideoSession]: ...


# ------------------------------------------------------------------------------------------ prompts
def interior_point(mask: np.ndarray) -> tuple[int, int]:
    """The pixel of ``mask`` (H, W) bool farthest from its boundary (image border counts as boundary).

    Returns (x, y) in pixels. Unlike the centroid it always lies inside the mask. Empty mask: InputError.
    """
    if not mask.any():
        raise InputError("mask", "a non-empty mask", "an empty mask")
    padded = np.pad(mask.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return int(x), int(y)


center_point = interior_point


def random_point(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly random foreground pixel (x, y) of ``mask`` (H, W) bool."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise InputError("mask", "a non-empty mask", "an empty mask")
    index = int(rng.integers(ys.size))
    return int(xs[index]), int(ys[index])


def noisy_point(mask: np.ndarray, noise_px: float, rng: np.random.Generator) -> tuple[float, float]:
    """The centre point moved by isotropic Gaussian noise (std ``noise_px`` pixels), clipped to the image."""
    x, y = interior_point(mask)
    dx, dy = rng.normal(0.0, noise_px, size=2)
    height, width = mask.shape
    return float(np.clip(x + dx, 0, width - 1)), float(np.clip(y + dy, 0, height - 1))


def jittered_box(mask: np.ndarray, jitter_px: float, rng: np.random.Generator) -> np.ndarray:
    """The tight box (x1, y1, x2, y2) of ``mask`` with each coordinate moved by U(-jitter, jitter) pixels.

    Clipped to the image and kept at least one pixel wide and high. Returns (4,) float32.
    """
    box = mask_to_box(mask).astype(np.float64)
    if jitter_px > 0:
        box = box + rng.uniform(-jitter_px, jitter_px, size=4)
    height, width = mask.shape
    x1, x2 = _ordered_span(box[0], box[2], width)
    y1, y2 = _ordered_span(box[1], box[3], height)
    return np.array([x1, y1, x2, y2], dtype=np.float32)


def _ordered_span(a: float, b: float, size: int) -> tuple[float, float]:
    """(low, high) within [0, size] and at least one pixel apart (size >= 1)."""
    low, high = sorted((float(np.clip(a, 0, size)), float(np.clip(b, 0, size))))
    if high - low < 1:
        low, high = (low, low + 1) if low + 1 <= size else (size - 1.0, float(size))
    return low, high


# ------------------------------------------------------------------------------------------ results
@dataclass
class PromptOutcome:
    """One object under a single-prompt protocol: the chosen mask's scores and the prompt used.

    mask: (H, W) bool. iou, dice, boundary_f1: against the ground truth. score: the model's own IoU guess.
    prompt: JSON-ready description (points, labels, box). timings: per-stage seconds of the predict call.
    """

    iou: float
    dice: float
    boundary_f1: float
    score: float
    prompt: dict[str, Any]
    timings: dict[str, float]
    mask: np.ndarray = field(repr=False)


@dataclass
class ClickOutcome:
    """One object under iterative click simulation.

    ious: (max_clicks,) float64, IoU after clicks 1..max_clicks. clicks: (x, y, label) per click, label 1
    positive / 0 negative. noc: threshold -> clicks needed (``max_clicks`` when never reached).
    reached: threshold -> whether it was reached. timings: per-stage seconds, one dict per predict call.
    dice, boundary_f1: of the final mask. final_mask: (H, W) bool after the last click.
    """

    ious: np.ndarray
    clicks: list[tuple[int, int, int]]
    noc: dict[float, int]
    reached: dict[float, bool]
    timings: list[dict[str, float]]
    dice: float
    boundary_f1: float
    final_mask: np.ndarray = field(repr=False)


def read_timings(predictor: Any) -> dict[str, float]:
    """The predictor's ``last_timings`` restricted to the three stage keys (missing keys read as 0.0)."""
    timings = getattr(predictor, "last_timings", None) or {}
    return {key: float(timings.get(key, 0.0)) for key in TIMING_KEYS}


def _choose(result: MaskResult, gt: np.ndarray, select: str) -> int:
    if len(result) == 0:
        raise InputError("predictor", "at least one mask per predict call", "none")
    if select == "oracle":
        return int(np.argmax(np.atleast_1d(iou(result.masks, np.broadcast_to(gt, result.masks.shape)))))
    return int(np.argmax(result.scores))


# ------------------------------------------------------------------------------------------ protocols
Select = Literal["score", "oracle"]


@dataclass
class SinglePromptProtocol:
    """One prompt per object, made from its ground-truth mask.

    kind: ``center``, ``random-point``, ``point-noise`` or ``box``. noise_px: std of the point noise.
    jitter_px: box jitter. select: which of several masks counts (``score``: highest predicted IoU,
    ``oracle``: highest true IoU, as the SAM paper also reports). Point prompts ask for 3 masks, boxes for 1.
    """

    kind: Literal["center", "random-point", "point-noise", "box"] = "center"
    noise_px: float = 5.0
    jitter_px: float = 0.0
    select: Select = "score"

    @property
    def name(self) -> str:
        return self.kind

    def prompt(self, gt: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        """The prompt for ground truth ``gt`` (H, W) bool: ``{"points": [[x, y]], "labels": [1]}`` or ``{"box": [...]}``."""
        if self.kind == "center":
            point: tuple[float, float] = interior_point(gt)
        elif self.kind == "random-point":
            point = random_point(gt, rng)
        elif self.kind == "point-noise":
            point = noisy_point(gt, self.noise_px, rng)
        elif self.kind == "box":
            return {"box": [float(v) for v in jittered_box(gt, self.jitter_px, rng)]}
        else:
            raise InputError("protocol", "center, random-point, point-noise or box", self.kind)
        return {"points": [[float(point[0]), float(point[1])]], "labels": [1]}

    def run(self, predictor: ImagePredictor, gt: np.ndarray, rng: np.random.Generator) -> PromptOutcome:
        """Prompt ``predictor`` (image already set) for the object ``gt`` (H, W) bool and score its answer."""
        prompt = self.prompt(gt, rng)
        if "box" in prompt:
            result = predictor.predict(box=np.asarray(prompt["box"], dtype=np.float32), multimask=False)
        else:
            result = predictor.predict(
                points=np.asarray(prompt["points"], dtype=np.float32),
                labels=np.asarray(prompt["labels"], dtype=np.int64),
                multimask=True,
            )
        timings = read_timings(predictor)
        index = _choose(result, gt, self.select)
        mask = result.masks[index].astype(bool)
        return PromptOutcome(
            iou=float(iou(mask, gt)),
            dice=float(dice(mask, gt)),
            boundary_f1=float(boundary_f1(mask, gt)),
            score=float(result.scores[index]),
            prompt=prompt,
            timings=timings,
            mask=mask,
        )


def next_click(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int] | None:
    """The simulated user's next click for prediction ``pred`` against ``gt`` (both (H, W) bool).

    Finds the largest connected error region (8-connected; missed object pixels or false foreground
    pixels) and clicks its most interior pixel. Returns (x, y, label) with label 1 for a missed region,
    0 for a false one, or None when the prediction is already perfect.
    """
    best: tuple[int, np.ndarray, int] | None = None
    for error, label in ((gt & ~pred, 1), (pred & ~gt, 0)):
        if not error.any():
            continue
        count, regions, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), connectivity=8)
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[largest, cv2.CC_STAT_AREA])
        if best is None or area > best[0]:
            best = (area, regions == largest, label)
    if best is None:
        return None
    x, y = interior_point(best[1])
    return x, y, best[2]


@dataclass
class ClickProtocol:
    """Iterative click simulation (see the module docstring).

    max_clicks: clicks per object (the usual cap is 20). thresholds: IoU levels for NoC (0.85, 0.90).
    feed_logits: pass the previous best low-resolution logits as ``mask_input`` from the second click on.
    select: ``score`` or ``oracle`` choice among the 3 masks of the first click (later clicks ask for one).
    stop_when_reached: stop once every threshold is reached and repeat the last IoU for the remaining
    clicks (faster; the curve is then an estimate past that point).
    """

    max_clicks: int = 20
    thresholds: tuple[float, ...] = (0.85, 0.90)
    feed_logits: bool = True
    select: Select = "score"
    stop_when_reached: bool = False

    name = "clicks"

    def __post_init__(self) -> None:
        if not isinstance(self.max_clicks, int) or self.max_clicks < 1:
            raise InputError("max_clicks", "an integer >= 1", self.max_clicks)
        if not all(0.0 < t <= 1.0 for t in self.thresholds):
            raise InputError("thresholds", "IoU levels in (0, 1]", self.thresholds)

    def run(
        self, predictor: ImagePredictor, gt: np.ndarray, rng: np.random.Generator | None = None
    ) -> ClickOutcome:
        """Simulate up to ``max_clicks`` clicks on the object ``gt`` (H, W) bool; the image is already set."""
        if not gt.any():
            raise InputError("gt", "a non-empty object mask", "an empty mask")
        pred = np.zeros_like(gt, dtype=bool)
        clicks: list[tuple[int, int, int]] = []
        ious: list[float] = []
        timings: list[dict[str, float]] = []
        logits: np.ndarray | None = None
        while len(clicks) < self.max_clicks:
            click = next_click(pred, gt)
            if click is None:  # perfect already: further clicks change nothing
                ious.extend([ious[-1]] * (self.max_clicks - len(ious)))
                break
            clicks.append(click)
            points = np.array([[c[0], c[1]] for c in clicks], dtype=np.float32)
            labels = np.array([c[2] for c in clicks], dtype=np.int64)
            first = len(clicks) == 1
            result = predictor.predict(
                points=points,
                labels=labels,
                mask_input=None if (first or not self.feed_logits) else logits,
                multimask=first,
            )
            timings.append(read_timings(predictor))
            index = _choose(result, gt, self.select) if first else int(np.argmax(result.scores))
            pred = result.masks[index].astype(bool)
            logits = result.logits[index]
            ious.append(float(iou(pred, gt)))
            if self.stop_when_reached and ious[-1] >= max(self.thresholds):
                ious.extend([ious[-1]] * (self.max_clicks - len(ious)))
                break
        curve = np.asarray(ious, dtype=np.float64)
        noc, reached = {}, {}
        for threshold in self.thresholds:
            hits = np.flatnonzero(curve >= threshold)
            reached[threshold] = bool(hits.size)
            noc[threshold] = int(hits[0]) + 1 if hits.size else self.max_clicks
        return ClickOutcome(
            ious=curve,
            clicks=clicks,
            noc=noc,
            reached=reached,
            timings=timings,
            dice=float(dice(pred, gt)),
            boundary_f1=float(boundary_f1(pred, gt)),
            final_mask=pred,
        )


@dataclass
class VideoProtocol:
    """Semi-supervised video evaluation: first-frame prompts per object, tracker propagates, DAVIS J/F scored.

    mode: ``mask`` (the first-frame ground-truth mask) or ``click`` (one positive click at its centre).
    Objects are prompted on the first frame where their annotation shows them.
    """

    mode: Literal["mask", "click"] = "mask"
    skip_first_last: bool = True

    @property
    def name(self) -> str:
        return f"video-{self.mode}"

    def prompts(self, video: VideoSample) -> list[tuple[int, int, dict[str, Any]]]:
        """(frame, object id, keyword arguments for ``session.add``) for every object of ``video``."""
        pending = set(video.object_ids)
        out: list[tuple[int, int, dict[str, Any]]] = []
        for index in range(len(video.frames)):
            if not pending:
                break
            for obj_id, mask in video.load_masks(index).items():
                if obj_id in pending and mask.any():
                    pending.discard(obj_id)
                    if self.mode == "mask":
                        out.append((index, obj_id, {"mask": mask}))
                    else:
                        x, y = interior_point(mask)
                        out.append((index, obj_id, {"points": [[x, y]], "labels": [1]}))
        return out

    def run(self, tracker: VideoTracker, video: VideoSample) -> list[ObjectScores]:
        """Track every object of ``video`` with ``tracker`` and score each annotated frame (J and F)."""
        source: Path | Sequence[Path] = video.frames[0].parent if video.frames else video.frames
        predicted: dict[int, dict[int, np.ndarray]] = {}
        with tracker.session(source) as session:
            for frame, obj_id, kwargs in self.prompts(video):
                session.add(frame=frame, obj_id=obj_id, **kwargs)
            for frame, tracks in session.propagate():
                predicted[int(frame)] = {int(k): _track_mask(v) for k, v in tracks.items()}
        annotated = [i for i, a in enumerate(video.annotations) if a is not None]
        if self.skip_first_last:
            annotated = annotated[1:-1]
        if not annotated:
            return []
        gt_frames = [video.load_masks(i) for i in annotated]
        scores = []
        for obj_id in video.object_ids:
            gt = np.stack([frame[obj_id] for frame in gt_frames])
            pred = np.zeros_like(gt)
            for row, index in enumerate(annotated):
                mask = predicted.get(index, {}).get(obj_id)
                if mask is not None:
                    if mask.shape != gt.shape[1:]:
                        raise InputError("tracker", f"masks of size {gt.shape[1:]}", mask.shape)
                    pred[row] = mask
            j, f = score_masks(pred, gt)
            frames = [video.frames[i].stem for i in annotated]
            scores.append(ObjectScores(sequence=video.name, object_id=obj_id, frames=frames, j=j, f=f))
        return scores


def _track_mask(track: Any) -> np.ndarray:
    mask = getattr(track, "mask", track)
    return np.asarray(mask).astype(bool).reshape(np.shape(mask)[-2:])


ImageProtocol = SinglePromptProtocol | ClickProtocol

PROTOCOL_NAMES = ("center", "random-point", "point-noise", "box", "clicks", "video-mask", "video-click")


def make_protocol(
    name: str,
    *,
    noise_px: float = 5.0,
    jitter_px: float = 0.0,
    max_clicks: int = 20,
    select: Select = "score",
) -> SinglePromptProtocol | ClickProtocol | VideoProtocol:
    """A protocol by its CLI name (one of ``PROTOCOL_NAMES``)."""
    if name in ("center", "random-point", "point-noise", "box"):
        if noise_px < 0 or jitter_px < 0:
            raise InputError("noise/jitter", "non-negative pixels", (noise_px, jitter_px))
        return SinglePromptProtocol(kind=name, noise_px=noise_px, jitter_px=jitter_px, select=select)  # type: ignore[arg-type]
    if name == "clicks":
        return ClickProtocol(max_clicks=max_clicks, select=select)
    if name in ("video-mask", "video-click"):
        return VideoProtocol(mode=name.split("-", 1)[1])  # type: ignore[arg-type]
    raise InputError("protocol", f"one of {', '.join(PROTOCOL_NAMES)}", name)
