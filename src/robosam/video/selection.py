"""Which memories and object pointers an object reads on a frame, in plain Python (no torch, no transformers).

The ONNX engine keeps the memory bank itself, so it chooses what the memory attention reads with this module;
the rule is the one ``robosam.json``'s ``video.step`` documents for callers and the one transformers'
``Sam2VideoModel._gather_memory_frame_outputs`` / ``_get_object_pointers`` apply (in eval mode, stride 1).
``tests/test_export_video.py`` checks that both pick the same records, offsets and pointer reach on the same
record layouts. The torch engine calls transformers' methods themselves.
"""

from __future__ import annotations

from typing import Any

from robosam.video.memory import FrameRecord, ObjectMemory


def closest_cond_frames(
    frame: int, cond: dict[int, FrameRecord], max_cond_frame_num: int
) -> tuple[dict[int, FrameRecord], dict[int, FrameRecord]]:
    """(selected, unselected) conditioning records: all of them when ``max_cond_frame_num`` is -1 or not
    exceeded; otherwise the closest one before ``frame``, the closest one at or after it, then the temporally
    closest others up to ``max_cond_frame_num`` (selected keeps that insertion order)."""
    if max_cond_frame_num == -1 or len(cond) <= max_cond_frame_num:
        return cond, {}
    selected: dict[int, FrameRecord] = {}
    before = max((t for t in cond if t < frame), default=None)
    if before is not None:
        selected[before] = cond[before]
    after = min((t for t in cond if t >= frame), default=None)
    if after is not None:
        selected[after] = cond[after]
    remaining = sorted((t for t in cond if t not in selected), key=lambda t: abs(t - frame))
    selected.update((t, cond[t]) for t in remaining[: max_cond_frame_num - len(selected)])
    return selected, {t: r for t, r in cond.items() if t not in selected}


def memory_frames(
    memory: ObjectMemory, frame: int, num_maskmem: int, max_cond_frame_num: int, reverse: bool
) -> list[tuple[int, FrameRecord | None]]:
    """(temporal offset, record or None) pairs the memory attention reads on ``frame``: the selected
    conditioning frames at offset 0, then offsets ``num_maskmem - 1`` down to 1, each the tracked record that
    many frames before (after, in reverse) or an unselected conditioning record there, or None."""
    if not memory.cond:
        raise ValueError("an object needs a conditioning frame before it can be tracked from memory")
    selected, unselected = closest_cond_frames(frame, memory.cond, max_cond_frame_num)
    chosen: list[tuple[int, FrameRecord | None]] = [(0, record) for record in selected.values()]
    for offset in range(num_maskmem - 1, 0, -1):
        previous = frame + offset if reverse else frame - offset
        chosen.append((offset, memory.tracked.get(previous, unselected.get(previous))))
    return chosen


def object_pointers(
    memory: ObjectMemory,
    frame: int,
    num_frames: int | None,
    max_object_pointers: int,
    reverse: bool,
) -> tuple[list[int], list[Any], int]:
    """(temporal offsets, pointers, pointer reach) the memory attention reads on ``frame``.

    Conditioning frames up to ``frame`` (from it on, in reverse) at offset (frame - t) (times -1 in reverse);
    then the tracked frames 1 .. reach - 1 before (after) it that have a record, within [0, num_frames).
    reach: ``max_object_pointers``, or at most ``num_frames`` for a video of known length (``num_frames``
    None: a live stream). Offsets are normalised by the caller with max(reach - 1, 1).
    """
    sign = -1 if reverse else 1
    reach = max_object_pointers if num_frames is None else min(num_frames, max_object_pointers)
    offsets: list[int] = []
    pointers: list[Any] = []
    for t, record in memory.cond.items():
        if (t >= frame) if reverse else (t <= frame):
            offsets.append((frame - t) * sign)
            pointers.append(record.object_pointer)
    for step in range(1, reach):
        other = frame + step if reverse else frame - step
        if other < 0 or (num_frames is not None and other >= num_frames):
            break
        record = memory.tracked.get(other)
        if record is not None:
            offsets.append(step)
            pointers.append(record.object_pointer)
    return offsets, pointers, reach
