"""A tracking session over a recorded video: prompts on any frame, propagation forwards or backwards.

Semantics (those of Meta's SAM 2 video predictor, where it has them):
- A prompt on a frame the object was not tracked on starts the object there (a conditioning frame, decoded
  without memory). Re-prompting that frame replaces its points and feeds the earlier mask back in.
- A prompt on a frame the object was tracked on corrects it: the clicks are decoded with the object's memory
  and its earlier mask. Unlike Meta's predictor, later propagations keep a corrected frame as the user left it.
- ``propagate`` steps from ``start`` (default: the earliest prompted frame) to the end (or back to frame 0);
  an object joins at its first prompted frame in that direction. Every frame is yielded, with the objects
  tracked on it.
By default a session keeps every frame's memory (so any frame can be corrected and re-propagated, and
propagation can run in both directions); ``keep_history=False`` keeps only what tracking onwards reads.
Decoded frames and high-resolution masks are never kept: frames are re-read from the source when needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from robosam.errors import InputError
from robosam.io.frames import FrameSource, IteratorFrames
from robosam.results import Track
from robosam.video.features import FeatureCache, FrameFeatures
from robosam.video.jobs import Job
from robosam.video.memory import FrameRecord, ObjectMemory
from robosam.video.prompts import check_obj_id, make_prompt
from robosam.video.retention import RetentionPolicy
from robosam.video.tracks import records_to_tracks

if TYPE_CHECKING:
    from robosam.video.engine import TrackingEngine


class TrackingSession:
    """Tracking over one frame source (see the module docstring). Use as a context manager, or ``close()``.

    Attributes: ``num_frames`` (None for an open-ended iterator), ``frame_size`` (H, W), ``object_ids``.
    """

    def __init__(self, engine: TrackingEngine, source: FrameSource, *, keep_history: bool = True):
        self.engine = engine
        self.source = source
        self.objects: dict[int, ObjectMemory] = {}
        self._features = FeatureCache(capacity=2)
        self._horizon = source.num_frames  # fixed for the session: the model's pointer reach depends on it
        facts = engine.facts
        self.policy = (
            None
            if keep_history
            else RetentionPolicy.for_model(facts.num_maskmem, facts.max_object_pointers, keep_logits=True)
        )

    # ---------------------------------------------------------------------------------------- context
    def __enter__(self) -> TrackingSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._features.clear()
        self.source.close()

    @property
    def num_frames(self) -> int | None:
        return self.source.num_frames

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.source.frame_size

    @property
    def object_ids(self) -> list[int]:
        return list(self.objects)

    # ---------------------------------------------------------------------------------------- prompts
    def add(
        self,
        frame: int,
        obj_id: int,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask: Any = None,
    ) -> Track:
        """Prompt object ``obj_id`` on ``frame`` with clicks (``points`` (P, 2) pixels, ``labels`` (P,) 1/0),
        a ``box`` (x1, y1, x2, y2), or a ``mask`` (H, W) bool. Returns the object's mask on that frame."""
        obj_id = check_obj_id(obj_id)
        rgb = self.source[frame]
        frame = int(frame)
        prompt = make_prompt(rgb.shape[:2], points=points, labels=labels, box=box, mask=mask)
        memory = self.objects.get(obj_id) or ObjectMemory(obj_id)
        existing = memory.record(frame)
        conditioning = frame in memory.cond or frame not in memory.tracked
        job = Job(
            memory=memory,
            prompt=prompt,
            conditioning=conditioning,
            reverse=False if conditioning or existing is None else existing.reverse,
            previous_logits=existing.logits if existing is not None and not prompt.is_mask else None,
        )
        records = self.engine.step(
            frame, self._frame_features(frame, rgb), [job], rgb.shape[:2], self._horizon
        )
        memory.prompts[frame] = prompt
        self.objects[obj_id] = memory
        return records_to_tracks(records, rgb.shape[:2])[obj_id]

    def remove(self, obj_id: int) -> None:
        """Forget object ``obj_id`` (its prompts and every frame of it)."""
        if obj_id not in self.objects:
            raise InputError("obj_id", f"one of the session's objects {self.object_ids}", obj_id)
        del self.objects[obj_id]

    def reset(self) -> None:
        """Forget every object and prompt (the source stays open)."""
        self.objects.clear()

    # ---------------------------------------------------------------------------------------- tracking
    def propagate(
        self, start: int | None = None, max_frames: int | None = None, reverse: bool = False
    ) -> Iterator[tuple[int, dict[int, Track]]]:
        """Track every object frame by frame; yields ``(frame_index, {obj_id: Track})``.

        start: first frame (default: the earliest prompted frame). max_frames: how many frames to yield at
        most. reverse: go backwards in time, down to frame 0.
        """
        prompted = [frame for memory in self.objects.values() for frame in memory.cond]
        if not prompted:
            raise InputError("prompts", "at least one prompt (session.add) before propagate", None)
        if start is None:
            start = min(prompted)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InputError("start", "a non-negative frame index", start)
        if self.num_frames is not None and start >= self.num_frames:
            raise InputError("start", f"a frame index in [0, {self.num_frames})", start)
        if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
        ):
            raise InputError("max_frames", "a positive number of frames", max_frames)
        if reverse and isinstance(self.source, IteratorFrames):
            raise InputError("reverse", "False for an iterator source (it cannot go back)", reverse)
        return self._propagate(start, max_frames, reverse)

    def _propagate(
        self, start: int, max_frames: int | None, reverse: bool
    ) -> Iterator[tuple[int, dict[int, Track]]]:
        frame, done = start, 0
        while frame >= 0 and (max_frames is None or done < max_frames):
            if self.num_frames is not None and frame >= self.num_frames:
                return
            records: dict[int, FrameRecord] = {}
            jobs: list[Job] = []
            for memory in self.objects.values():
                if not memory.active_at(frame, reverse):
                    continue
                kept = memory.cond.get(frame) or _prompted(memory.tracked.get(frame))
                if kept is not None:
                    records[memory.obj_id] = kept
                else:
                    jobs.append(Job(memory=memory, reverse=reverse))
            rgb = self._read(frame)
            if rgb is None:
                return
            if jobs:
                features = self._frame_features(frame, rgb)
                records.update(self.engine.step(frame, features, jobs, rgb.shape[:2], self._horizon))
            ordered = {obj_id: records[obj_id] for obj_id in self.objects if obj_id in records}
            tracks = records_to_tracks(ordered, rgb.shape[:2])
            if self.policy is not None:
                for memory in self.objects.values():
                    self.policy.prune(memory, frame, reverse)
            if isinstance(self.source, IteratorFrames):
                self.source.release(frame)
            yield frame, tracks
            done += 1
            frame += -1 if reverse else 1

    # ---------------------------------------------------------------------------------------- frames
    def _read(self, frame: int) -> Any:
        """Frame ``frame`` of the source, or None past the end of an open-ended source."""
        try:
            return self.source[frame]
        except InputError:
            count = self.source.num_frames
            if count is not None and frame >= count:
                return None
            raise

    def _frame_features(self, frame: int, rgb: Any) -> FrameFeatures:
        features = self._features.get(frame)
        if features is None:
            features = self.engine.features(rgb)
            self._features.put(frame, features)
        return features


def _prompted(record: FrameRecord | None) -> FrameRecord | None:
    return record if record is not None and record.prompted else None
