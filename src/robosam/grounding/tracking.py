"""Text-driven tracking: detect on the first frame and every N frames, start tracks for new instances, keep
identities by mask IoU with the live tracks, retire tracks that stay invisible.

``IdentityTracker`` is the bookkeeping alone (plain numpy, any mask source); ``TextTracker`` wires it to a
``TextSegmenter`` and, when given one, to a live video tracker (``VideoTracker.stream()``) that propagates the
masks between detections. A detection continues the track whose mask it overlaps most: its mask from the video
tracker, or its last detection (whichever overlaps more), so identities hold even where the video tracker drifts.
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
    """One identity. mask: (H, W) bool, last seen (video tracker or detection). detected: (H, W) bool, its
    last detection. invisible: frames in a row it was not seen. missed: detection frames in a row the
    detector did not find it."""

    track_id: int
    label: str
    mask: np.ndarray
    score: float
    first_frame: int
    last_seen: int
    detected: np.ndarray | None = None
    invisible: int = 0
    missed: int = 0


@dataclass
class FrameIdentities:
    """What one ``IdentityTracker.step`` decided.

    ids: (N,) track id per detection of the frame (-1: dropped as a duplicate of another track).
    births: ids started on this frame. retired: ids ended on this frame. visible: {id: mask} of every track
    seen on this frame (by a detection or by propagation). lost: matched ids that were unseen on the frame
    before. agreement: (N,) IoU of each detection with its track's mask before this frame's detection
    (1 for births, 0 for dropped duplicates).
    """

    frame: int
    ids: np.ndarray
    births: list[int] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)
    visible: dict[int, np.ndarray] = field(default_factory=dict)
    lost: list[int] = field(default_factory=list)
    agreement: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))


class IdentityTracker:
    """Stable ids for detections across frames.

    iou_threshold: a detection continues the live track it overlaps most (one-to-one, Hungarian on mask IoU,
        the larger of the IoU with the track's current mask and with its last detection) when that IoU
        reaches this; otherwise it starts a new track, unless it overlaps an already matched or live track by
        ``duplicate_iou`` (then it is a duplicate and dropped: ids do not churn).
    max_invisible: a track unseen more than this many frames in a row is retired; ids are never reused.
    max_missed: a track the detector misses on more than this many detection frames in a row is retired even
        while a video tracker still shows it (None: never for that reason).
    match_labels: only detections of the same phrase continue a track.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_invisible: int = 5,
        duplicate_iou: float = 0.5,
        match_labels: bool = True,
        max_missed: int | None = None,
    ):
        self.iou_threshold = check_threshold(iou_threshold, "iou_threshold")
        self.duplicate_iou = check_threshold(duplicate_iou, "duplicate_iou")
        self.max_invisible = _frames(max_invisible, "max_invisible")
        self.max_missed = None if max_missed is None else _frames(max_missed, "max_missed")
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
        """Account for one frame whose video-tracker masks are known before matching.

        masks: (N, H, W) bool detections of this frame, or None on a frame without detection;
        labels (N,) phrases; scores (N,). propagated: {track id: (H, W) mask or None} from a video tracker
        for this frame (an empty or missing mask means not visible).
        """
        seen = self._observe(propagated, {})
        decided = self._detect(frame, masks, labels, scores, seen)
        return self._close(decided)

    def match(
        self,
        frame: int,
        masks: np.ndarray,
        labels: Iterable[str] | None = None,
        scores: Iterable[float] | None = None,
    ) -> FrameIdentities:
        """Match this frame's detections before the video tracker has run on it (so that new and lost tracks
        can be prompted on this very frame); ``finish`` with the tracker's masks closes the frame."""
        return self._detect(frame, masks, labels, scores, {})

    def finish(
        self, decided: FrameIdentities, propagated: dict[int, np.ndarray | None] | None = None
    ) -> FrameIdentities:
        """Close a frame opened by ``match`` (or, without detections, ``FrameIdentities(frame, ids=[])``):
        the video tracker's masks ``propagated`` for it, then visibility and retirement."""
        self._observe(propagated, decided.visible)
        return self._close(decided)

    def _observe(self, propagated: dict[int, np.ndarray | None] | None, seen: dict) -> dict:
        for track_id, state in self.live.items():
            mask = None if propagated is None else propagated.get(track_id)
            if mask is not None and np.asarray(mask).any():
                state.mask = np.asarray(mask, dtype=bool)
                seen[track_id] = state.mask
        return seen

    def _detect(
        self,
        frame: int,
        masks: np.ndarray | None,
        labels: Iterable[str] | None,
        scores: Iterable[float] | None,
        seen: dict[int, np.ndarray],
    ) -> FrameIdentities:
        if masks is None:
            return FrameIdentities(frame, np.zeros(0, dtype=np.int64), visible=seen)
        masks = np.asarray(masks, dtype=bool)
        count = len(masks)
        labels = [""] * count if labels is None else [str(x) for x in labels]
        scores = np.ones(count) if scores is None else np.asarray(list(scores), dtype=float)
        if len(labels) != count or len(scores) != count:
            raise InputError("labels/scores", f"{count} labels and scores, one per mask", len(labels))
        decided = self._match(frame, masks, labels, scores, seen)
        for track_id, state in self.live.items():
            state.missed = 0 if track_id in decided.ids else state.missed + 1
        return decided

    def _close(self, decided: FrameIdentities) -> FrameIdentities:
        for track_id in list(self.live):
            state = self.live[track_id]
            if track_id in decided.visible:
                state.invisible, state.last_seen = 0, decided.frame
            else:
                state.invisible += 1
            missed = self.max_missed is not None and state.missed > self.max_missed
            if state.invisible > self.max_invisible or missed:
                self.retired[track_id] = self.live.pop(track_id)
                decided.retired.append(track_id)
                decided.visible.pop(track_id, None)
        return decided

    def _overlap(self, masks: np.ndarray, states: list[TrackState]) -> np.ndarray:
        """(N, T) the larger IoU of each mask with each track's current mask and its last detection."""
        current = mask_iou(masks, np.stack([s.mask for s in states]))
        detected = mask_iou(masks, np.stack([s.mask if s.detected is None else s.detected for s in states]))
        return np.maximum(current, detected)

    def _match(
        self,
        frame: int,
        masks: np.ndarray,
        labels: list[str],
        scores: np.ndarray,
        seen: dict[int, np.ndarray],
    ) -> FrameIdentities:
        track_ids = list(self.live)
        ids = np.full(len(masks), -1, dtype=np.int64)
        agreement = np.zeros(len(masks), dtype=np.float32)
        lost = []
        if track_ids and len(masks):
            states = [self.live[t] for t in track_ids]
            iou = self._overlap(masks, states)
            if self.match_labels:
                same = np.array([[lab == s.label for s in states] for lab in labels])
                iou = np.where(same, iou, 0.0)
            rows, cols = linear_sum_assignment(-iou)
            for row, col in zip(rows, cols):
                if iou[row, col] >= self.iou_threshold:
                    track_id, state = track_ids[col], states[col]
                    ids[row] = track_id
                    agreement[row] = mask_iou(masks[row : row + 1], state.mask[None])[0, 0]
                    if state.invisible > 0:
                        lost.append(track_id)
                    if track_id not in seen:  # a propagated mask stays; else the detection is the new view
                        state.mask = masks[row]
                    state.detected = masks[row]
                    state.score = float(scores[row])
                    seen[track_id] = state.mask
        births = []
        for row in np.argsort(-scores, kind="stable"):  # best first, so a duplicate loses to the original
            if ids[row] != -1:
                continue
            others = [s for t, s in self.live.items() if t in seen or s.invisible == 0]
            if others and self._overlap(masks[row : row + 1], others).max() >= self.duplicate_iou:
                continue
            track_id = self._next_id
            self._next_id += 1
            self.live[track_id] = TrackState(
                track_id, labels[row], masks[row], float(scores[row]), frame, frame, detected=masks[row]
            )
            ids[row] = track_id
            agreement[row] = 1.0
            seen[track_id] = masks[row]
            births.append(track_id)
        return FrameIdentities(frame, ids, births, [], seen, lost, agreement)


def _frames(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(argument, "a non-negative integer (frames)", value)
    return value


class TextTracker:
    """Tracks everything ``text`` names through a stream of frames, with stable ids.

    text_segmenter: a ``TextSegmenter``. every: detect on frame 0 and every ``every`` frames; between them
        ``live`` propagates the masks: a ``robosam.video.VideoTracker`` (its ``stream()`` is used) or a live
        stream (anything with ``add(obj_id=, mask=)``, ``step(frame) -> {obj_id: Track}``, ``remove(obj_id)``
        and ``object_ids``, prompts applying to the next frame stepped). On a detection frame the detections
        are matched first, new tracks and tracks the video tracker lost or drifted from (mask IoU with the
        detection below ``refresh_iou``) are prompted with the detection's mask, then the frame is stepped
        once. Without ``live``, detection runs on every frame (tracking by detection).
    iou_threshold, max_invisible, duplicate_iou: as for ``IdentityTracker``. max_missed (with ``live``): a
        track the detector misses on more than this many detection frames in a row is retired even while the
        video tracker still shows it (video trackers hold on to look-alikes after an object leaves).
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
        max_missed: int | None = 2,
        refresh_iou: float = 0.3,
        live: Any = None,
    ):
        self.phrases = parse_phrases(text)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise InputError("every", "a positive number of frames", every)
        self.segmenter = text_segmenter
        self.every = every if live is not None else 1
        self.box_threshold = check_threshold(box_threshold, "box_threshold")
        self.text_threshold = check_threshold(text_threshold, "text_threshold")
        self.refresh_iou = check_threshold(refresh_iou, "refresh_iou")
        self.identities = IdentityTracker(
            iou_threshold, max_invisible, duplicate_iou, max_missed=max_missed if live is not None else None
        )
        self.live = live.stream() if hasattr(live, "stream") else live
        if self.live is not None and not all(hasattr(self.live, a) for a in ("add", "step", "remove")):
            raise InputError(
                "live", "a VideoTracker or its stream() (add, step, remove)", type(live).__name__
            )
        self.frame_index = -1
        self._labels: dict[int, str] = {}
        self._scores: dict[int, float] = {}

    def step(self, frame: Any) -> MaskResult:
        """Masks of the tracks visible in ``frame`` (path, PIL or array), with ``track_ids`` and ``labels``."""
        rgb = load_image(frame, argument="frame")
        self.frame_index += 1
        index = self.frame_index
        detections = None
        if index % self.every == 0:
            detections = self.segmenter.segment(rgb, self.phrases, self.box_threshold, self.text_threshold)
        if self.live is None:
            decided = self.identities.step(
                index,
                None if detections is None else detections.masks,
                None if detections is None else detections.labels,
                None if detections is None else detections.scores,
            )
        else:
            if detections is None:
                decided = FrameIdentities(index, np.zeros(0, dtype=np.int64))
            else:
                decided = self.identities.match(index, detections.masks, detections.labels, detections.scores)
                self._prompt_live(detections, decided)
            tracks = self.live.step(rgb)
            propagated = {
                int(i): (t.mask if getattr(t, "visible", True) else None) for i, t in tracks.items()
            }
            decided = self.identities.finish(decided, propagated)
        if detections is not None:
            for row, track_id in enumerate(decided.ids.tolist()):
                if track_id >= 0:
                    self._labels[track_id] = str(detections.labels[row])
                    self._scores[track_id] = float(detections.scores[row])
        if self.live is not None:
            current = set(getattr(self.live, "object_ids", decided.retired))
            for track_id in decided.retired:
                if track_id in current:
                    self.live.remove(track_id)
        return self._result(rgb.shape[:2], decided)

    def _prompt_live(self, detections: MaskResult, decided: FrameIdentities) -> None:
        """Prompt the live tracker, for the frame about to be stepped, with the detection's mask of each new
        track, each track it lost, and each track whose mask has drifted from the detection."""
        for row, track_id in enumerate(decided.ids.tolist()):
            if track_id < 0:
                continue
            refresh = decided.agreement[row] < self.refresh_iou
            if track_id in decided.births or track_id in decided.lost or refresh:
                self.live.add(obj_id=track_id, mask=detections.masks[row])

    def _result(self, image_hw: tuple[int, int], decided: FrameIdentities) -> MaskResult:
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


def text_tracker(
    text: str | list[str],
    detector: Any = "grounding-dino-tiny",
    *,
    segmenter: Any = None,
    live: Any = None,
    device: str = "auto",
    **options: Any,
) -> Any:
    """A text tracker for ``detector``: SAM 3 video's own concept tracking when it names a SAM 3 video model
    (the ``sam3`` preset, a ``Sam3VideoModel`` folder: ``Sam3VideoTextTracker``, ``segmenter`` and ``live``
    unused, ``box_threshold`` passed on when given), else a ``TextTracker`` over
    ``TextSegmenter(segmenter, detector)`` and the live tracker ``live`` (a ``VideoTracker``, its stream, or a
    model ``VideoTracker`` loads). Both have ``step(frame) -> MaskResult`` and ``run(frames)``.
    options: ``TextTracker``'s keyword arguments (every, box_threshold, text_threshold, iou_threshold, ...).
    """
    from robosam.grounding.sam3_video import Sam3VideoTextTracker, native_source

    phrases = parse_phrases(text)
    native = native_source(detector)
    if native is not None:
        return Sam3VideoTextTracker(
            native, phrases, box_threshold=options.get("box_threshold"), device=device
        )
    from robosam.grounding.loading import load_detector
    from robosam.grounding.text_segmenter import TextSegmenter

    found = load_detector(detector, device=device)
    text_segmenter = TextSegmenter(None if found.gives_masks else segmenter, detector=found, device=device)
    if live is not None and not hasattr(live, "step") and not hasattr(live, "stream"):
        from robosam.video import VideoTracker

        live = VideoTracker(live, device=device)
    return TextTracker(text_segmenter, phrases, live=live, **options)
