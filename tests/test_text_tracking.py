"""Text-driven tracking end to end: ``TextTracker`` on the real live tracker (``VideoTracker.stream()`` of a tiny
random SAM 2 video model) with detections from a real tiny Grounding DINO + SAM, and with a deterministic
colour detector for the identity story.

Why a deterministic detector for the identity checks: a random-weight Grounding DINO's boxes come from its
random queries, not from the objects, so they neither follow a moving object nor stay on it (measured: 7 ids
for 2 objects over 12 frames); identities can only be judged against detections that follow the objects. The
colour detector implements robosam's ``Detector`` interface and finds each coloured block by its colour.
The video tracker stays real (random weights: its masks between detections are the model's, not the
objects'), which is what the bookkeeping must cope with: identities come from mask IoU with the tracks'
current masks or their last detections.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from test_grounding_tiny import build_grounding_dino
from test_video_models import (
    one_torch_thread,  # noqa: F401 - autouse fixture
    synthetic_frames,
    tiny_tracker,
)

from robosam.errors import InputError
from robosam.grounding import Detections, TextSegmenter, TextTracker, load_detector
from robosam.grounding.tracking import mask_iou

H, W = 60, 80
YELLOW, GREEN = (220, 180, 40), (40, 200, 90)


class ColourDetector:
    """Finds blocks of a known colour: each phrase names a colour, each connected region of it is one
    detection (box, mask, score 0.9). Implements ``robosam.grounding.Detector``."""

    name = "colour"
    gives_masks = True
    colours = {"yellow box": YELLOW, "green box": GREEN}

    def __init__(self):
        self.frames_seen = 0

    def detect(self, image, phrases, box_threshold, text_threshold):
        self.frames_seen += 1
        masks, labels = [], []
        for phrase in phrases:
            regions, count = ndimage.label(np.all(image == self.colours[phrase], axis=-1))
            for k in range(1, count + 1):
                masks.append(regions == k)
                labels.append(phrase)
        if not masks:
            return Detections.empty(image.shape[:2], with_masks=True)
        boxes = [(xs.min(), ys.min(), xs.max(), ys.max()) for ys, xs in (np.nonzero(m) for m in masks)]
        return Detections(boxes, [0.9] * len(masks), labels, masks=np.stack(masks)).sorted()


def block_video(count: int = 24) -> tuple[list[np.ndarray], list[dict[str, np.ndarray]]]:
    """Frames and, per frame, the true mask of each object: A (yellow) crosses left to right the whole time;
    B (green) is there on frames 6-13 only; C (yellow) enters on frame 12 at the bottom."""
    frames, truth = [], []
    for t in range(count):
        frame = np.full((H, W, 3), 30, dtype=np.uint8)
        frame[:, :, 2] = np.linspace(0, 120, W, dtype=np.uint8)[None, :]
        objects = {"A": (6, 4 + 2 * t, 16, 14)}
        if 6 <= t <= 13:
            objects["B"] = (24, 60 - t, 12, 12)
        if t >= 12:
            objects["C"] = (42, 2 + (t - 12), 14, 12)
        masks = {}
        for name, (y, x, w, h) in objects.items():
            frame[y : y + h, x : x + w] = GREEN if name == "B" else YELLOW
            mask = np.zeros((H, W), dtype=bool)
            mask[y : y + h, x : x + w] = True
            masks[name] = mask
        frames.append(frame)
        truth.append(masks)
    return frames, truth


def test_text_tracker_on_the_real_live_tracker_keeps_identities():
    frames, truth = block_video()
    detector = ColourDetector()
    live = tiny_tracker("sam2").stream()
    tracker = TextTracker(
        TextSegmenter(None, detector=detector),
        "yellow box. green box",
        every=3,
        max_invisible=5,
        max_missed=1,
        live=live,
    )
    names: dict[int, set[str]] = {}  # track id -> objects it was given to on detection frames
    births, retired, seen_ids = {}, {}, set()
    for t, frame in enumerate(frames):
        before = set(tracker.identities.live)
        result = tracker.step(frame)
        for track_id in set(tracker.identities.live) - before:
            births[track_id] = t
        for track_id in before - set(tracker.identities.live):
            retired[track_id] = t
        seen_ids |= set(result.track_ids.tolist())
        assert result.masks.shape[1:] == (H, W)
        assert sorted(live.object_ids) == sorted(tracker.identities.live)  # retired tracks left the stream
        if t % 3 == 0:
            for name, mask in truth[t].items():
                track_id = _best_track(tracker, mask)
                names.setdefault(track_id, set()).add(name)
    assert detector.frames_seen == 8  # frames 0, 3, ..., 21
    assert births == {1: 0, 2: 6, 3: 12}  # new instances start tracks on detection frames
    assert {i: n for i, n in names.items()} == {1: {"A"}, 2: {"B"}, 3: {"C"}}  # one id per object
    assert seen_ids == {1, 2, 3}  # no id churn, ever
    # B left after frame 13; the detector missed it on frames 15 and 18: retired there (max_missed=1)
    assert retired == {2: 18} and set(tracker.identities.retired) == {2}
    # every prompt reached the live tracker on a detection frame, births included
    for track_id, memory in live.objects.items():
        assert births[track_id] in memory.cond and all(frame % 3 == 0 for frame in memory.cond)


def _best_track(tracker: TextTracker, mask: np.ndarray) -> int:
    """The live track whose last detection is the object's mask (IoU > 0.99)."""
    states = list(tracker.identities.live.values())
    iou = mask_iou(mask[None], np.stack([s.detected for s in states]))[0]
    assert iou.max() > 0.99
    return states[int(iou.argmax())].track_id


def test_births_are_shown_with_their_detection_mask():
    frames, truth = block_video(7)
    tracker = TextTracker(
        TextSegmenter(None, detector=ColourDetector()), "yellow box. green box", every=3, live=tiny_tracker()
    )
    results = [tracker.step(frame) for frame in frames]
    # frame 0: A is born and prompted with its mask; the tracker's mask there is the prompt through the 16 x 16
    # low-resolution mask (IoU 0.87 measured for A); frame 6: B is born the same way
    assert list(results[0].track_ids) == [1] and mask_iou(results[0].masks[:1], truth[0]["A"][None]) > 0.8
    row = list(results[6].track_ids).index(2)
    assert mask_iou(results[6].masks[row : row + 1], truth[6]["B"][None])[0, 0] > 0.8
    assert list(results[6].labels)[row] == "green box"


class CountingDetector:
    """Passes through to a real detector, counting the frames it is asked about."""

    def __init__(self, detector):
        self.detector, self.name, self.gives_masks = detector, detector.name, detector.gives_masks
        self.calls = 0

    def detect(self, image, phrases, box_threshold, text_threshold):
        self.calls += 1
        return self.detector.detect(image, phrases, box_threshold, text_threshold)


@pytest.fixture(scope="module")
def grounding_dino(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("grounding_dino")
    return build_grounding_dino(folder)


def test_real_detector_sam_and_live_tracker_end_to_end(grounding_dino: Path, tiny_model_dirs):
    from robosam.segmenter import Segmenter

    detector = CountingDetector(load_detector(grounding_dino, device="cpu"))
    text_segmenter = TextSegmenter(Segmenter(tiny_model_dirs["sam"], device="cpu"), detector=detector)
    live = tiny_tracker("sam2").stream()
    tracker = TextTracker(
        text_segmenter, "red cup. box", every=4, box_threshold=0.2, text_threshold=0.0, live=live
    )
    frames = synthetic_frames(10)
    births: dict[int, int] = {}
    for t, frame in enumerate(frames):
        before = set(tracker.identities.live) | set(tracker.identities.retired)
        result = tracker.step(frame)
        born = set(tracker.identities.live) | set(tracker.identities.retired)
        births.update({i: t for i in born - before})
        assert set(result.track_ids.tolist()) <= set(tracker.identities.live)
        assert sorted(live.object_ids) == sorted(tracker.identities.live)
        assert result.masks.shape == (len(result), *frame.shape[:2])
        assert set(result.labels) <= {"red cup", "box"}
        if t == 0:  # frame 0's tracks are detections (SAM's masks from the boxes; overlapping ones dropped)
            direct = TextSegmenter(text_segmenter.segmenter, detector=detector.detector)
            expected = direct.segment(frame, "red cup. box", box_threshold=0.2, text_threshold=0.0)
            assert 0 < len(result) <= len(expected)
            detected = np.stack([tracker.identities.live[i].detected for i in result.track_ids])
            assert np.all(mask_iou(detected, expected.masks).max(1) == 1.0)
            assert all(0 in live.objects[i].cond for i in result.track_ids)  # prompted on frame 0
            # shown: the tracker's mask from the prompt, through its 16 x 16 low-res mask (IoU 0.65-1 measured)
            assert np.all(mask_iou(result.masks, detected).diagonal() > 0.6)
    assert detector.calls == 3  # frames 0, 4, 8
    assert births and set(births.values()) <= {0, 4, 8}  # tracks start on detection frames only
    assert sorted(births) == list(range(1, len(births) + 1))  # ids are never reused
    assert live.frame_index == len(frames) - 1  # the live tracker stepped each frame once


def test_text_tracker_arguments():
    segmenter = TextSegmenter(None, detector=ColourDetector())
    with pytest.raises(InputError, match="every"):
        TextTracker(segmenter, "yellow box", every=0)
    with pytest.raises(InputError, match="text"):
        TextTracker(segmenter, " . ")
    with pytest.raises(InputError, match="box_threshold"):
        TextTracker(segmenter, "yellow box", box_threshold=1.5)
    with pytest.raises(InputError, match="max_missed"):
        TextTracker(segmenter, "yellow box", max_missed=-1, live=tiny_tracker())
    with pytest.raises(InputError, match="live"):
        TextTracker(segmenter, "yellow box", live=object())


def test_text_tracker_factory_builds_a_text_tracker_over_the_live_tracker():
    from robosam.grounding.tracking import text_tracker

    tracker = text_tracker("yellow box", ColourDetector(), live=tiny_tracker(), every=2, max_missed=0)
    assert isinstance(tracker, TextTracker) and tracker.every == 2 and tracker.identities.max_missed == 0
    assert tracker.live.__class__.__name__ == "LiveTracker"
    frames, _ = block_video(3)
    assert [list(r.track_ids) for _, r in tracker.run(frames)] == [[1], [1], [1]]
