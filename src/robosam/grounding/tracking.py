"""Text-driven tracking: detect on the first frame and every N frames, start tracks for new instances, keep
identities by mask IoU with the live tracks, retire tracks that stay invisible.

``IdentityTracker`` is the bookkeeping alone (plain numpy, any mask source); ``TextTracker`` wires it to a
``TextSegmenter`` and, when given one, to a live video tracker that propagates masks between detections.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from robosam.errors import InputError
from robosam.grounding.base import check_threshold, parse_phrases
from robosam.io import load_image
from robosam.masks import mask_to_box
from robosam.results import MaskResult


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) IoU between masks a (A, H, W) and b (B, H, W) bool (0 where both are empty)."""
    a = a.reshape(len(a), -1).astype(np.float32)
    b = b.reshape(len(b), -1).astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class TrackState:
    """One identity. mask: (H, W) bool, last seen. invisible: frames in a row it was not seen."""

    track_id: int
    label: str
    mask: np.ndarray
    score: float
    first_frame: int
    last_seen: int
    invisible: int = 0


@dataclass
class FrameIdentities:
    """What one ``IdentityTracker.step`` decided.

    ids: (N,) track id per detection of the frame (-1: dropped as a duplicate of another track).
    births: ids started on this frame. retired: ids ended on this frame. visible: {id: mask} of every track
    seen on this frame (by a detection or by propagation).
    """

    frame: int
    ids: np.ndarray
    births: list[int] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)
    visible: dict[int, np.ndarray] = field(default_factory=dict)


class IdentityTracker:
    """Stable ids for detections across frames.

    iou_threshold: a detection continues the live track it overlaps most (one-to-one, Hungarian on mask IoU)
        when their IoU reaches this; otherwise it starts a new track, unless it overlaps an already matched or
        live track by ``duplicate_iou`` (then it is a duplicate and dropped: ids do not churn).
    max_invisible: a track unseen this many frames in a row is retired; ids are never reused.
    match_labels: only detections of the same phrase continue a track.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_invisible: int = 5,
        duplicate_iou: float = 0.5,
        match_labels: bool = True,
    ):
        self.iou_threshold = check_threshold(iou_threshold, "iou_threshold")
        self.duplicate_iou = check_threshold(duplicate_iou, "duplicate_iou")
        if not isinstance(max_invisible, int) or max_invisible < 0:
            raise InputError("max_invisible", "a non-negative integer (frames)", max_invisible)
        self.max_invisible = max_invisible
        self.match_labels = match_labels
        self.live: dict[int, TrackState] = {}
        self.retired: dict[int, TrackState] = {}
        self._next_id = 1

    def step(
        self,
        frame: int,
        masks: np.ndarray | None = None,
        labels: Iterable[str] | None = None,
        scores: Iterable[float] | None = None,
        propagated: dict[int, np.ndarray | None] | None = None,
    ) -> FrameIdentities:
        """Account for one frame.

        masks: (N, H, W) bool detections of this frame, or None on a frame without detection;
        labels (N,) phrases; scores (N,). propagated: {track id: (H, W) mask or None} from a video tracker
        for this frame (an empty or missing mask means not visible).
        """
        seen: dict[int, np.ndarray] = {}
        for track_id, state in self.live.items():
            mask = None if propagated is None else propagated.get(track_id)
            if mask is not None and np.asarray(mask).any():
                state.mask = np.asarray(mask, dtype=bool)
                seen[track_id] = state.mask
        ids = np.zeros(0, dtype=np.int64)
        births: list[int] = []
        if masks is not None:
            masks = np.asarray(masks, dtype=bool)
            count = len(masks)
            labels = [""] * count if labels is None else [str(x) for x in labels]
            scores = np.ones(count) if scores is None else np.asarray(list(scores), dtype=float)
            if len(labels) != count or len(scores) != count:
                raise InputError("labels/scores", f"{count} labels and scores, one per mask", len(labels))
            ids, births = self._match(frame, masks, labels, scores, seen)
        retired = []
        for track_id in list(self.live):
            state = self.live[track_id]
            if track_id in seen:
                state.invisible, state.last_seen = 0, frame
                continue
            state.invisible += 1
            if state.invisible > self.max_invisible:
                self.retired[track_id] = self.live.pop(track_id)
                retired.append(track_id)
        return FrameIdentities(frame, ids, births, retired, seen)

    def _match(
        self,
        frame: int,
        masks: np.ndarray,
        labels: list[str],
        scores: np.ndarray,
        seen: dict[int, np.ndarray],
    ) -> tuple[np.ndarray, list[int]]:
        track_ids = list(self.live)
        ids = np.full(len(masks), -1, dtype=np.int64)
        if track_ids and len(masks):
            iou = mask_iou(masks, np.stack([self.live[t].mask for t in track_ids]))
            if self.match_labels:
                same = np.array([[lab == self.live[t].label for t in track_ids] for lab in labels])
                iou = np.where(same, iou, 0.0)
            rows, cols = linear_sum_assignment(-iou)
            for row, col in zip(rows, cols):
                if iou[row, col] >= self.iou_threshold:
                    track_id = track_ids[col]
                    ids[row] = track_id
                    state = self.live[track_id]
                    if track_id not in seen:  # a propagated mask stays; else the detection is the new view
                        state.mask = masks[row]
                    state.score = float(scores[row])
                    seen[track_id] = state.mask
        births = []
        for row in np.argsort(-scores, kind="stable"):  # best first, so a duplicate loses to the original
            if ids[row] != -1:
                continue
            others = [s.mask for t, s in self.live.items() if t in seen or s.invisible == 0]
            if others and mask_iou(masks[row : row + 1], np.stack(others)).max() >= self.duplicate_iou:
                continue
            track_id = self._next_id
            self._next_id += 1
            self.live[track_id] = TrackState(
                track_id, labels[row], masks[row], float(scores[row]), frame, frame
            )
            ids[row] = track_id
            seen[track_id] = masks[row]
            births.append(track_id)
        return ids, births


class TextTracker:
    """Tracks everything ``text`` names through a stream of frames, with stable ids.

    text_segmenter: a ``TextSegmenter``. every: detect on frame 0 and every ``every`` frames; between them
        ``live`` propagates the masks: a ``robosam.video.VideoTracker`` or its ``stream()`` (anything with
        ``add(obj_id=, mask=)``, ``step(frame) -> {obj_id: Track}`` and ``remove(obj_id)``; prompts apply to
        the next frame stepped, so a detection frame with new objects is stepped twice). Without ``live``,
        detection runs on every frame (tracking by detection).
    iou_threshold, max_invisible, duplicate_iou: as for ``IdentityTracker``.
    """

    def __init__(
        self,
        text_segmenter: Any,
        text: str | list[str],
        *,
        every: int = 10,
        box_threshold: float = 0.3,
        text_threshold: float = 0.25,
        iou_threshold: float = 0.3,
        max_invisible: int = 5,
        duplicate_iou: float = 0.5,
        live: Any = None,
    ):
        self.phrases = parse_phrases(text)
        if not isinstance(every, int) or every < 1:
            raise InputError("every", "a positive number of frames", every)
        self.segmenter = text_segmenter
        self.every = every if live is not None else 1
        self.box_threshold = check_threshold(box_threshold, "box_threshold")
        self.text_threshold = check_threshold(text_threshold, "text_threshold")
        self.identities = IdentityTracker(iou_threshold, max_invisible, duplicate_iou)
        self.live = live.stream() if hasattr(live, "stream") else live
        self.frame_index = -1
        self._labels: dict[int, str] = {}
        self._scores: dict[int, float] = {}

    def step(self, frame: Any) -> MaskResult:
        """Masks of the tracks visible in ``frame`` (path, PIL or array), with ``track_ids`` and ``labels``."""
        rgb = load_image(frame, argument="frame")
        self.frame_index += 1
        index = self.frame_index
        propagated = None
        if self.live is not None and self.identities.live:
            tracks = self.live.step(rgb)
            propagated = {
                int(i): (t.mask if getattr(t, "visible", True) else None) for i, t in tracks.items()
            }
        detections = None
        if index % self.every == 0:
            detections = self.segmenter.segment(rgb, self.phrases, self.box_threshold, self.text_threshold)
        decided = self.identities.step(
            index,
            None if detections is None else detections.masks,
            None if detections is None else detections.labels,
            None if detections is None else detections.scores,
            propagated,
        )
        if detections is not None:
            for row, track_id in enumerate(decided.ids):
                if track_id >= 0:
                    self._labels[int(track_id)] = str(detections.labels[row])
                    self._scores[int(track_id)] = float(detections.scores[row])
            if self.live is not None and self._prompt_live(detections, decided, propagated or {}):
                self.live.step(rgb)  # prompts apply to the next frame given: this one again, where they hold
        for track_id in decided.retired:
            if self.live is not None and hasattr(self.live, "remove"):
                self.live.remove(track_id)
        return self._result(rgb.shape[:2], decided)

    def _prompt_live(self, detections: MaskResult, decided: Any, propagated: dict) -> bool:
        """New tracks, and tracks the video tracker lost but the detector found again, are (re)prompted
        in the live tracker with the detection's mask; True when any was."""
        prompted = False
        for row, track_id in enumerate(decided.ids.tolist()):
            if track_id < 0:
                continue
            shown = propagated.get(track_id)
            if track_id in decided.births or shown is None or not np.asarray(shown).any():
                self.live.add(obj_id=track_id, mask=detections.masks[row])
                prompted = True
        return prompted

    def _result(self, image_hw: tuple[int, int], decided: Any) -> MaskResult:
        ids = sorted(decided.visible)
        masks = np.stack([decided.visible[i] for i in ids]) if ids else np.zeros((0, *image_hw), dtype=bool)
        return MaskResult(
            masks=masks,
            scores=np.asarray([self._scores.get(i, 0.0) for i in ids], dtype=np.float32),
            logits=np.zeros((len(ids), 0, 0), dtype=np.float32),
            object_ids=np.asarray(ids, dtype=np.int64),
            labels=np.asarray([self._labels.get(i, "") for i in ids], dtype=object),
            track_ids=np.asarray(ids, dtype=np.int64),
            data={"boxes": mask_to_box(masks)},
        )

    def run(self, frames: Iterable[Any]) -> Iterator[tuple[int, MaskResult]]:
        """``(frame_index, result)`` for each frame of ``frames`` (arrays, PIL images or paths)."""
        for frame in frames:
            result = self.step(frame)
            yield self.frame_index, result
