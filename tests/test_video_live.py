"""Live streams: the masks of a session over the same frames, with and without pruning, over 200+ frames;
flat memory; skipped frames; clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from test_video_models import (
    mask_iou,
    one_torch_thread,  # noqa: F401 - autouse fixture
    synthetic_frames,
    tiny_tracker,
)

from robosam.errors import InputError
from robosam.video import RetentionPolicy

FRAMES = 200
JOINS_AT = 60  # a third object enters mid-stream
MASK3 = np.zeros((60, 80), dtype=bool)
MASK3[30:50, 10:40] = True


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return synthetic_frames(FRAMES)


def _live(frames, policy="default"):
    """Every frame's masks {frame: {obj_id: mask}} from a live stream (policy None: keep everything)."""
    live = tiny_tracker("sam2").stream(prune=policy is not None)
    if policy not in ("default", None):
        live.policy = policy
    out, sizes = {}, {}
    for index, frame in enumerate(frames):
        if index == 0:
            live.add(obj_id=1, points=[[15, 16]], labels=[1])
            live.add(obj_id=2, box=[50, 34, 75, 56])
        if index == JOINS_AT:
            live.add(obj_id=3, mask=MASK3)
        out[index] = {obj_id: t.mask for obj_id, t in live.step(frame).items()}
        sizes[index] = (sum(len(m.tracked) + len(m.cond) for m in live.objects.values()), live.nbytes())
    return out, sizes, live


@pytest.fixture(scope="module")
def session_masks(frames):
    with tiny_tracker("sam2").session(frames) as session:
        session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
        session.add(frame=0, obj_id=2, box=[50, 34, 75, 56])
        session.add(frame=JOINS_AT, obj_id=3, mask=MASK3)
        return {f: {o: t.mask for o, t in tracks.items()} for f, tracks in session.propagate()}


@pytest.fixture(scope="module")
def pruned(frames):
    return _live(frames)


def _worst_iou(a, b) -> float:
    assert a.keys() == b.keys()
    worst = 1.0
    for frame in a:
        assert a[frame].keys() == b[frame].keys(), frame
        worst = min([worst] + [mask_iou(a[frame][o], b[frame][o]) for o in a[frame]])
    return worst


def test_live_stream_equals_session_with_pruning(session_masks, pruned) -> None:
    masks, _, _ = pruned
    assert len(masks) == FRAMES
    assert sorted(masks[JOINS_AT - 1]) == [1, 2] and sorted(masks[JOINS_AT]) == [1, 2, 3]
    assert _worst_iou(session_masks, masks) >= 0.999  # 1.0 measured


def test_live_stream_equals_session_without_pruning(session_masks, frames) -> None:
    masks, _, _ = _live(frames, policy=None)
    assert _worst_iou(session_masks, masks) >= 0.999


def test_pruning_too_much_changes_masks(session_masks, frames) -> None:
    """The comparison above has power: keeping 2 frames instead of the model's window changes masks."""
    masks, _, _ = _live(frames[:40], policy=RetentionPolicy(memory_frames=2, pointer_frames=2))
    changed = sum(not np.array_equal(masks[f][o], session_masks[f][o]) for f in masks for o in masks[f])
    assert changed > 10  # 392 of 400 masks in 200 frames measured
    assert _worst_iou({f: session_masks[f] for f in masks}, masks) < 0.9


def test_memory_stays_flat(pruned) -> None:
    _, sizes, live = pruned
    records_100, bytes_100 = sizes[100]
    assert sizes[FRAMES - 1] == (records_100, bytes_100)  # nothing grows from frame 100 on
    # per object: its conditioning frame and the last max_object_pointers - 1 = 15 tracked frames
    assert all(len(m.cond) == 1 and len(m.tracked) <= 15 for m in live.objects.values())
    spatial = [r for m in live.objects.values() for r in m.tracked.values() if r.maskmem_features is not None]
    assert len(spatial) <= 3 * 6  # the last num_maskmem - 1 = 6 memories per object
    assert all(
        r.logits is None for m in live.objects.values() for r in (*m.tracked.values(), *m.cond.values())
    )


def test_unreadable_frames_are_skipped_and_reported(frames, tmp_path) -> None:
    live = tiny_tracker("sam2").stream()
    live.add(obj_id=1, points=[[15, 16]], labels=[1])
    assert sorted(live.step(frames[0])) == [1]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert live.step(tmp_path / "bad.png") == {}
    assert live.step(tmp_path / "missing.png") == {}
    assert live.step(None) == {}
    assert sorted(live.step(frames[1])) == [1]
    assert [s.position for s in live.skipped] == [1, 2, 3]
    assert "frame 1" in live.skipped[0].reason and "frame 2" in live.skipped[1].reason
    assert live.frame_index == 1 and live.positions == 5


def test_bad_live_input_is_an_input_error(frames) -> None:
    live = tiny_tracker("sam2").stream()
    live.add(obj_id=1, points=[[70, 50]], labels=[1])  # checked against the frame once it arrives
    with pytest.raises(InputError, match="points inside the 40x30 image"):
        live.step(frames[0][:30, :40])
    live.reset()
    live.add(obj_id=1, points=[[15, 16]], labels=[1])
    live.step(frames[0])
    with pytest.raises(InputError, match=r"frame 1: expected the stream's frame size 80x60"):
        live.step(frames[1][:40])
    with pytest.raises(InputError, match="points inside the 80x60 image"):
        live.add(obj_id=2, points=[[100, 10]], labels=[1])
    with pytest.raises(InputError, match="obj_id"):
        live.remove(9)
    live.remove(1)
    assert live.step(frames[2]) == {} and live.object_ids == []


def test_repeated_prompts_keep_the_latest_prompted_frames_only(frames) -> None:
    """A stream re-prompted on every frame (a text tracker correcting drift) holds at most
    ``max_prompt_frames`` prompted frames per object, the latest, so its memory stops growing; with None it
    keeps every one, as a session does."""
    tracker = tiny_tracker("sam2")
    held = {}
    for cap in (3, None):
        live = tracker.stream(max_prompt_frames=cap)
        sizes = []
        for index, frame in enumerate(frames[:12]):
            live.add(obj_id=1, box=[10 + index, 10, 30 + index, 30])
            live.step(frame)
            sizes.append(live.nbytes())
        memory = live.objects[1]
        held[cap] = (sorted(memory.cond), sizes)
    assert held[3][0] == [9, 10, 11]
    assert held[3][1][2:] == [held[3][1][2]] * 10  # flat once three are held
    assert held[None][0] == list(range(12)) and held[None][1][-1] > 3 * held[3][1][-1]
    with pytest.raises(InputError, match="max_prompt_frames"):
        tracker.stream(max_prompt_frames=0)
