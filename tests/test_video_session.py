"""Tracking sessions: three kinds of source, prompts of every kind on any frame, corrections, both directions,
batched objects, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_video_models import (
    VIDEO_BUILDERS,
    decode_video,
    mask_iou,
    one_torch_thread,  # noqa: F401 - autouse fixture
    synthetic_frames,
    tiny_tracker,
    tiny_video_model,
    write_frames,
    write_video,
)

from robosam.errors import InputError
from robosam.results import Track


def _masks(results: dict[int, dict[int, Track]]) -> dict[tuple[int, int], np.ndarray]:
    return {(frame, obj_id): t.mask for frame, tracks in results.items() for obj_id, t in tracks.items()}


def _track(tracker, source, prompts, **propagate) -> dict[int, dict[int, Track]]:
    with tracker.session(source) as session:
        for frame, obj_id, kwargs in prompts:
            session.add(frame=frame, obj_id=obj_id, **kwargs)
        return dict(session.propagate(**propagate))


PROMPTS = [
    (0, 1, {"points": [[15, 16]], "labels": [1]}),
    (0, 2, {"box": [50, 34, 75, 56]}),
    (4, 3, {"points": [[40, 30], [5, 5]], "labels": [1, 0]}),
]


def test_folder_file_and_iterator_sources_give_identical_tracks(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", synthetic_frames(20))
    decoded = decode_video(video)  # the same pixels for all three sources
    folder = write_frames(tmp_path / "frames", decoded)
    tracker = tiny_tracker("sam2")
    from_file = _track(tracker, video, PROMPTS)
    from_folder = _track(tracker, folder, PROMPTS)
    from_iterator = _track(tracker, iter(decoded), PROMPTS)
    assert sorted(from_file) == list(range(20))
    assert sorted(from_file[3]) == [1, 2] and sorted(from_file[4]) == [1, 2, 3]
    for other in (from_folder, from_iterator):
        assert sorted(other) == sorted(from_file)
        for frame, tracks in from_file.items():
            assert sorted(other[frame]) == sorted(tracks)
            for obj_id, track in tracks.items():
                assert np.array_equal(other[frame][obj_id].mask, track.mask), (frame, obj_id)
                assert other[frame][obj_id].score == track.score


def test_tracks_carry_score_presence_visibility_and_box() -> None:
    frames = synthetic_frames(4)
    with tiny_tracker("sam2").session(frames) as session:
        first = session.add(frame=0, obj_id=7, points=[[15, 16]], labels=[1])
        tracks = dict(session.propagate())
    assert isinstance(first, Track) and first.obj_id == 7
    assert np.array_equal(first.mask, tracks[0][7].mask)  # the prompted frame is not re-tracked
    for frame_tracks in tracks.values():
        track = frame_tracks[7]
        assert track.mask.shape == (60, 80) and track.mask.dtype == bool
        assert 0.0 <= track.presence <= 1.0 and track.visible == (track.presence > 0.5)
        ys, xs = np.nonzero(track.mask)
        assert track.box.tolist() == [
            xs.min(),
            ys.min(),
            xs.max(),
            ys.max(),
        ]  # inclusive, as masks.mask_to_box
        record = track.to_dict()
        assert record["obj_id"] == 7 and record["area"] == int(track.mask.sum())


def test_mask_prompts_are_the_output_on_their_frame() -> None:
    frames = synthetic_frames(3)
    mask = np.zeros((60, 80), dtype=bool)
    mask[10:40, 20:50] = True
    with tiny_tracker("sam2").session(frames) as session:
        track = session.add(frame=1, obj_id=1, mask=mask)
        results = dict(session.propagate())
    assert mask_iou(track.mask, mask) > 0.9  # 0.94 measured: through 16 x 16 low-res logits and back
    assert track.score == 1.0 and track.visible
    assert sorted(results) == [1, 2]  # propagation starts at the earliest prompt


def test_objects_added_after_tracking_started_join_from_their_frame() -> None:
    frames = synthetic_frames(10)
    tracker = tiny_tracker("sam2")
    with tracker.session(frames) as session:
        session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
        before = dict(session.propagate())
        session.add(frame=5, obj_id=2, box=[50, 34, 75, 56])
        after = dict(session.propagate(start=5))
    assert sorted(after) == list(range(5, 10))
    assert all(sorted(after[f]) == [1, 2] for f in after)
    for frame in range(5, 10):  # object 1 does not depend on object 2
        assert np.array_equal(after[frame][1].mask, before[frame][1].mask)
    reference = _track(
        tracker, frames, [(0, 1, {"points": [[15, 16]], "labels": [1]}), (5, 2, {"box": [50, 34, 75, 56]})]
    )
    for frame in range(5, 10):  # the same as prompting both before tracking
        assert np.array_equal(after[frame][2].mask, reference[frame][2].mask)


def test_a_correction_retracks_from_its_frame_on() -> None:
    frames = synthetic_frames(10)
    with tiny_tracker("sam2").session(frames) as session:
        session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
        before = {f: t[1].mask for f, t in session.propagate()}
        corrected = session.add(frame=5, obj_id=1, points=[[40, 30]], labels=[0])
        after = {f: t[1].mask for f, t in session.propagate(start=5)}
        again = {f: t[1].mask for f, t in session.propagate()}  # a later pass keeps the corrected frame
    assert sorted(after) == list(range(5, 10))
    assert np.array_equal(after[5], corrected.mask) and not np.array_equal(after[5], before[5])
    assert any(not np.array_equal(after[f], before[f]) for f in range(6, 10))
    assert all(np.array_equal(again[f], before[f]) for f in range(5))
    assert all(np.array_equal(again[f], after[f]) for f in range(5, 10))


def test_reverse_propagation_tracks_back_to_frame_zero() -> None:
    frames = synthetic_frames(8)
    with tiny_tracker("sam2").session(frames) as session:
        session.add(frame=5, obj_id=1, points=[[40, 30]], labels=[1])
        backwards = list(session.propagate(reverse=True))
        forwards = list(session.propagate())
        limited = [f for f, _ in session.propagate(start=7, reverse=True, max_frames=3)]
    assert [f for f, _ in backwards] == [5, 4, 3, 2, 1, 0]
    assert all(sorted(t) == [1] and t[1].mask.shape == (60, 80) for _, t in backwards)
    assert [f for f, _ in forwards] == [5, 6, 7]
    assert limited == [7, 6, 5]


def test_remove_and_reset() -> None:
    frames = synthetic_frames(4)
    with tiny_tracker("sam2").session(frames) as session:
        session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
        session.add(frame=0, obj_id=2, box=[50, 34, 75, 56])
        session.remove(1)
        assert session.object_ids == [2]
        assert all(sorted(t) == [2] for _, t in session.propagate())
        with pytest.raises(InputError, match="obj_id"):
            session.remove(1)
        session.reset()
        assert session.object_ids == []
        with pytest.raises(InputError, match="at least one prompt"):
            session.propagate()


def test_keeping_only_the_window_gives_the_same_forward_tracks() -> None:
    frames = synthetic_frames(24)
    tracker = tiny_tracker("sam2")
    full = _track(tracker, frames, PROMPTS)
    with tracker.session(frames, keep_history=False) as session:
        for frame, obj_id, kwargs in PROMPTS:
            session.add(frame=frame, obj_id=obj_id, **kwargs)
        windowed = dict(session.propagate())
        kept = max(len(m.tracked) for m in session.objects.values())
    assert _equal_masks(full, windowed)
    assert kept <= 15  # max_object_pointers - 1 tracked frames per object, not 24


@pytest.mark.parametrize("family", list(VIDEO_BUILDERS))
def test_batched_objects_match_one_at_a_time(family: str) -> None:
    """Tracking four objects together (one memory attention, decoder and memory encoder call per frame)
    gives the masks of tracking them one at a time."""
    from robosam.video import VideoTracker

    frames = synthetic_frames(6)
    prompts = [
        (0, 1, {"points": [[15, 16]], "labels": [1]}),
        (0, 2, {"box": [50, 34, 75, 56]}),
        (0, 3, {"points": [[60, 10]], "labels": [1]}),
        (0, 4, {"points": [[30, 45], [70, 50]], "labels": [1, 0]}),
    ]
    batched = _logits(tiny_tracker(family), frames, prompts)
    single = _logits(VideoTracker(tiny_video_model(family), device="cpu", max_batch=1), frames, prompts)
    noise = max(float((batched[k] - single[k]).abs().max()) for k in batched)
    assert noise < 5e-4, noise  # float noise of batched matrix products: 6e-5 measured
    apart = min(
        float((batched[(f, 1)] - batched[(f, o)]).abs().max()) for f in range(1, 6) for o in (2, 3, 4)
    )
    assert apart > 100 * noise  # the objects' memories really differ, so a mix-up would show


def test_bad_input_is_an_input_error(tmp_path: Path) -> None:
    frames = synthetic_frames(4)
    with tiny_tracker("sam2").session(frames) as session:
        with pytest.raises(InputError, match=r"frame: expected a frame index in \[0, 4\)"):
            session.add(frame=4, obj_id=1, points=[[10, 10]], labels=[1])
        with pytest.raises(InputError, match="points inside the 80x60 image"):
            session.add(frame=0, obj_id=1, points=[[90, 10]], labels=[1])
        with pytest.raises(InputError, match="mask: expected a mask of the frame's size"):
            session.add(frame=0, obj_id=1, mask=np.ones((30, 40), dtype=bool))
        with pytest.raises(InputError, match="mask alone"):
            session.add(frame=0, obj_id=1, mask=np.ones((60, 80), dtype=bool), points=[[1, 1]])
        with pytest.raises(InputError, match="obj_id"):
            session.add(frame=0, obj_id=-3, points=[[10, 10]], labels=[1])
        with pytest.raises(InputError, match="at least one of points"):
            session.add(frame=0, obj_id=1)
        assert session.object_ids == []  # failed prompts leave nothing behind
        session.add(frame=0, obj_id=1, points=[[10, 10]], labels=[1])
        with pytest.raises(InputError, match="start"):
            session.propagate(start=9)
    with tiny_tracker("sam2").session(iter(frames)) as session:
        session.add(frame=0, obj_id=1, points=[[10, 10]], labels=[1])
        with pytest.raises(InputError, match="reverse"):
            session.propagate(reverse=True)
    folder = write_frames(tmp_path / "frames", frames)
    (folder / "2.png").write_bytes(b"broken")
    with tiny_tracker("sam2").session(folder) as session:
        session.add(frame=0, obj_id=1, points=[[10, 10]], labels=[1])
        with pytest.raises(InputError, match="frame 2"):
            list(session.propagate())


def test_a_mask_a_pixel_off_the_frame_size_is_resized() -> None:
    frames = synthetic_frames(2)
    mask = np.zeros((60, 79), dtype=bool)  # one column short, as annotation exports sometimes are
    mask[10:40, 20:50] = True
    with tiny_tracker("sam2").session(frames) as session:
        track = session.add(frame=0, obj_id=1, mask=mask)
        with pytest.raises(InputError, match="mask: expected a mask of the frame's size"):
            session.add(frame=0, obj_id=2, mask=np.ones((60, 76), dtype=bool))  # 5 % off: refused
    assert track.mask.shape == (60, 80)
    assert np.abs(track.box - np.array([20, 10, 49, 39])).max() <= 1


def _logits(tracker, frames, prompts) -> dict[tuple[int, int], object]:
    """Low-resolution logits per (frame, object) after tracking every frame."""
    with tracker.session(frames) as session:
        for frame, obj_id, kwargs in prompts:
            session.add(frame=frame, obj_id=obj_id, **kwargs)
        frames_done = [frame for frame, _ in session.propagate()]
        return {(f, o): m.record(f).logits for o, m in session.objects.items() for f in frames_done}


def _equal_masks(a: dict[int, dict[int, Track]], b: dict[int, dict[int, Track]]) -> bool:
    masks_a, masks_b = _masks(a), _masks(b)
    return masks_a.keys() == masks_b.keys() and all(np.array_equal(masks_a[k], masks_b[k]) for k in masks_a)
