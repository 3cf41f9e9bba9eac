"""Identity bookkeeping for text-driven tracking, on a scripted detection sequence: objects enter, cross,
leave for a while and come back, leave for good, and are detected twice; ids must not churn."""

from __future__ import annotations

import numpy as np
import pytest

from robosam.errors import InputError
from robosam.grounding import IdentityTracker, TextTracker
from robosam.grounding.tracking import mask_iou
from robosam.results import MaskResult

H, W = 64, 128


def disc(x: float, y: float, r: float = 9) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (xx - x) ** 2 + (yy - y) ** 2 <= r * r


def scripted_frames() -> list[list[tuple[str, str, np.ndarray, float]]]:
    """Per frame: (truth name, label, mask, score). A moves right, B left: they cross around frame 10
    (partly overlapping); C enters on frame 4, leaves after frame 11 and comes back on frame 20; B is missed
    on frames 12-14 and comes back; on frame 3 the detector reports A twice."""
    frames = []
    for t in range(24):
        rows = [("A", "cup", disc(20 + 4 * t, 26), 0.9)]
        if not 12 <= t <= 14:  # B comes back about where it was lost
            rows.append(("B", "cup", disc(100 - 4 * t + (15 if t > 14 else 0), 36), 0.8))
        if 4 <= t <= 11 or t >= 20:
            rows.append(("C", "bowl", disc(60, 54, 7), 0.7))
        if t == 3:
            rows.append(("A'", "cup", disc(21 + 4 * t, 26), 0.5))  # a duplicate of A
        frames.append(rows)
    return frames


def test_mask_iou():
    a, b = disc(20, 20), disc(24, 20)
    expected = (a & b).sum() / (a | b).sum()
    np.testing.assert_allclose(mask_iou(a[None], np.stack([a, b])), [[1.0, expected]])
    assert mask_iou(np.zeros((1, H, W), bool), np.zeros((1, H, W), bool))[0, 0] == 0


def test_ids_are_stable_through_entering_crossing_leaving_and_returning():
    tracker = IdentityTracker(iou_threshold=0.3, max_invisible=5)
    identity: dict[str, set[int]] = {}
    births, retired = [], []
    for t, rows in enumerate(scripted_frames()):
        step = tracker.step(t, np.stack([r[2] for r in rows]), [r[1] for r in rows], [r[3] for r in rows])
        births += [(t, i) for i in step.births]
        retired += [(t, i) for i in step.retired]
        for (name, *_), track_id in zip(rows, step.ids):
            identity.setdefault(name, set()).add(int(track_id))
    assert identity["A"] == {1} and identity["B"] == {2}  # kept through the crossing and B's absence
    assert identity["A'"] == {-1}  # the duplicate started no track
    assert identity["C"] == {3, 4}  # C was retired after 5 unseen frames; its return is a new track
    assert births == [(0, 1), (0, 2), (4, 3), (20, 4)]
    assert retired == [(17, 3)]  # last seen on frame 11, unseen on 12..17: the sixth unseen frame retires it
    assert set(tracker.live) == {1, 2, 4} and set(tracker.retired) == {3}


def test_crossing_objects_swap_nothing_even_when_their_masks_overlap():
    tracker = IdentityTracker(iou_threshold=0.2)
    for t in range(17):
        a, b = disc(20 + 5 * t, 30), disc(100 - 5 * t, 34)
        ids = tracker.step(t, np.stack([b, a]), ["cup", "cup"]).ids  # order of detections shuffled
        assert list(ids) == [1, 2]


def test_labels_must_agree_to_continue_a_track_and_one_object_gets_one_track():
    tracker = IdentityTracker()
    tracker.step(0, disc(30, 30)[None], ["cup"])
    assert list(tracker.step(1, np.stack([disc(31, 30), disc(90, 30)]), ["cup", "bowl"]).ids) == [1, 2]
    # the cup now also called "bowl": not a continuation of the bowl, and no second track on the cup
    assert list(tracker.step(2, np.stack([disc(32, 30), disc(90, 30)]), ["bowl", "bowl"]).ids) == [-1, 2]


def test_propagated_masks_keep_tracks_alive_between_detections():
    tracker = IdentityTracker(max_invisible=1)
    tracker.step(0, np.stack([disc(20, 30), disc(90, 30)]), ["cup", "cup"])
    for t in range(1, 6):  # no detections; the video tracker still sees 1, loses 2
        step = tracker.step(t, None, propagated={1: disc(20 + 3 * t, 30), 2: np.zeros((H, W), bool)})
        assert list(step.visible) == [1]
    assert set(tracker.live) == {1} and set(tracker.retired) == {2}
    step = tracker.step(6, disc(38, 30)[None], ["cup"], propagated={1: disc(38, 30)})
    assert list(step.ids) == [1] and step.births == []


def test_identity_tracker_arguments():
    with pytest.raises(InputError, match="iou_threshold"):
        IdentityTracker(iou_threshold=2)
    with pytest.raises(InputError, match="max_invisible"):
        IdentityTracker(max_invisible=-1)
    with pytest.raises(InputError, match="labels"):
        IdentityTracker().step(0, disc(3, 3)[None], ["a", "b"])


class ScriptedTextSegmenter:
    """Returns the scripted frame's masks for whatever phrases are asked (frame by call order)."""

    def __init__(self, frames):
        self.frames = iter(frames)
        self.calls = 0

    def segment(self, image, phrases, box_threshold, text_threshold):
        self.calls += 1
        rows = next(self.frames)
        return MaskResult(
            masks=np.stack([r[2] for r in rows]),
            scores=np.asarray([r[3] for r in rows], np.float32),
            logits=np.zeros((len(rows), 4, 4), np.float32),
            labels=[r[1] for r in rows],
        )


def test_text_tracker_without_a_video_tracker_detects_every_frame():
    frames = scripted_frames()
    segmenter = ScriptedTextSegmenter(frames)
    tracker = TextTracker(segmenter, "cup. bowl", every=5, max_invisible=5)
    images = [np.zeros((H, W, 3), np.uint8)] * len(frames)
    results = list(tracker.run(images))
    assert segmenter.calls == len(frames)
    _, first = results[0]
    assert list(first.track_ids) == [1, 2] and list(first.labels) == ["cup", "cup"]
    _, frame_13 = results[13]
    assert list(frame_13.track_ids) == [1]  # B is missed, C is gone
    _, last = results[-1]
    assert list(last.track_ids) == [1, 2, 4] and list(last.labels) == ["cup", "cup", "bowl"]
    np.testing.assert_array_equal(last.masks[2], frames[-1][2][2])


class ScriptedLive:
    """A live video tracker as the real one behaves: prompts apply to the next frame stepped; it follows each
    prompted mask ``shift`` px right per frame (the frame index is written in pixel (0, 0)); ``lose[t]``: ids
    it does not see on frame t."""

    def __init__(self, shift: int = 5):
        self.shift = shift
        self.pending: dict[int, np.ndarray] = {}
        self.objects: dict[int, tuple[int, np.ndarray]] = {}
        self.added: list[int] = []
        self.removed: list[int] = []
        self.lose: dict[int, set[int]] = {}
        self.steps = 0

    def add(self, obj_id, mask):
        self.pending[obj_id] = mask
        self.added.append(obj_id)

    @property
    def object_ids(self):
        return list(self.objects)

    def remove(self, obj_id):
        self.objects.pop(obj_id)
        self.removed.append(obj_id)

    def step(self, frame):
        from types import SimpleNamespace

        self.steps += 1
        t = int(frame[0, 0, 0])
        self.objects.update({i: (t, m) for i, m in self.pending.items()})
        self.pending = {}
        lost = self.lose.get(t, set())
        return {
            i: SimpleNamespace(mask=np.roll(m, self.shift * (t - t0), axis=1), visible=i not in lost)
            for i, (t0, m) in self.objects.items()
        }


def frame(t: int) -> np.ndarray:
    image = np.zeros((H, W, 3), np.uint8)
    image[0, 0, 0] = t
    return image


def test_text_tracker_with_a_live_tracker_detects_every_n_frames():
    frames = [[("A", "cup", disc(20 + 5 * t, 26), 0.9)] for t in range(12)]
    frames[10].append(("D", "cup", disc(40, 50), 0.8))  # a newcomer seen at the second detection
    segmenter = ScriptedTextSegmenter([frames[0], frames[5], frames[10]])
    live = ScriptedLive()
    tracker = TextTracker(segmenter, "cup", every=5, live=live)
    results = [tracker.step(frame(t)) for t in range(len(frames))]
    assert segmenter.calls == 3  # frames 0, 5, 10
    assert live.added == [1, 2]
    assert [list(r.track_ids) for r in results] == [[1]] * 10 + [[1, 2]] * 2
    np.testing.assert_array_equal(results[7].masks[0], frames[7][0][2])  # propagated, where A is
    assert live.steps == 12  # once per frame: prompts for a detection frame are given before it is stepped


def test_text_tracker_reprompts_the_live_tracker_for_a_lost_track_the_detector_finds():
    frames = [[("A", "cup", disc(20 + 2 * t, 26), 0.9)] for t in range(7)]
    segmenter = ScriptedTextSegmenter([frames[0], frames[3], frames[6]])
    live = ScriptedLive(shift=2)
    live.lose = {2: {1}, 3: {1}}  # the live tracker loses A on frames 2 and 3
    tracker = TextTracker(segmenter, "cup", every=3, live=live, max_invisible=3)
    results = [tracker.step(frame(t)) for t in range(len(frames))]
    assert [list(r.track_ids) for r in results] == [[1], [1], [], [1], [1], [1], [1]]
    assert live.added == [1, 1]  # born on frame 0, re-prompted on frame 3 where the detector found it


def test_a_detection_keeps_its_identity_and_reprompts_when_the_live_tracker_drifts():
    frames = [[("A", "cup", disc(20 + 2 * t, 26), 0.9)] for t in range(5)]
    segmenter = ScriptedTextSegmenter([frames[0], frames[2], frames[4]])
    live = ScriptedLive(shift=20)  # the video tracker runs away from A (20 px a frame; A moves 2)
    tracker = TextTracker(segmenter, "cup", every=2, live=live)
    results = [tracker.step(frame(t)) for t in range(5)]
    # A's detections overlap its last detection, not the tracker's mask: the same id, and the tracker is
    # prompted again with the detection's mask on each detection frame (agreement below refresh_iou)
    assert [list(r.track_ids) for r in results] == [[1]] * 5
    assert live.added == [1, 1, 1]
    np.testing.assert_array_equal(results[2].masks[0], frames[2][0][2])


def test_a_track_the_detector_keeps_missing_retires_though_the_tracker_still_shows_it():
    tracker = IdentityTracker(max_invisible=10, max_missed=1)
    tracker.step(0, np.stack([disc(20, 30), disc(90, 30)]), ["cup", "cup"])
    shown = {1: disc(20, 30), 2: disc(90, 30)}
    assert tracker.step(1, disc(20, 30)[None], ["cup"], propagated=shown).retired == []  # missed once
    assert tracker.step(2, None, propagated=shown).retired == []  # no detection: nothing missed
    assert tracker.step(3, disc(20, 30)[None], ["cup"], propagated=shown).retired == [2]
    assert set(tracker.live) == {1}
    with pytest.raises(InputError, match="max_missed"):
        IdentityTracker(max_missed=-2)
