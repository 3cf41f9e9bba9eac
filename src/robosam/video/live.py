"""Live tracking on an endless stream: frames arrive one by one, prompts apply to the next frame.

After each frame the tracker drops what no later frame reads (see ``robosam.video.retention``): each object
keeps its prompted frames, the last ``num_maskmem - 1`` memories and the last ``max_object_pointers - 1``
object pointers, and nothing else, so memory and time per frame stay flat for hours. The masks are those of
a session over the same frames (tested frame by frame against an unpruned run).

A frame that cannot be read is skipped: ``step`` returns no tracks, the stream goes on, and the frame's
position and the reason are kept in ``skipped`` (the last ``MAX_SKIPPED``; all are logged).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robosam.errors import InputError
from robosam.io.images import load_image
from robosam.results import Track
from robosam.video.jobs import Job
from robosam.video.memory import ObjectMemory
from robosam.video.prompts import VideoPrompt, check_against_frame, check_obj_id, make_prompt
from robosam.video.retention import RetentionPolicy
from robosam.video.tracks import records_to_tracks

if TYPE_CHECKING:
    from robosam.video.engine import TrackingEngine

logger = logging.getLogger(__name__)
MAX_SKIPPED = 1000  # skipped-frame reports kept (a broken camera must not grow memory either)
MAX_PROMPT_FRAMES = 8  # prompted frames kept per object in a stream (the latest)


@dataclass(frozen=True)
class SkippedFrame:
    """A frame the stream could not use: its position in the stream (counting every ``step``) and why."""

    position: int
    reason: str


class LiveTracker:
    """``add`` / ``remove`` objects, ``step(frame) -> {obj_id: Track}``.

    prune: drop what the model will not read again (default); False keeps every frame's memory (for tests
    and comparisons; memory then grows with the stream).
    max_prompt_frames: prompted (conditioning) frames kept per object, the latest ones. The model attends to
    every one it keeps, so a stream corrected again and again (a text tracker re-prompting on drift) would
    otherwise grow without bound; None keeps them all, as a session does.
    Attributes: ``frame_index`` (model index of the last tracked frame, -1 before the first), ``positions``
    (``step`` calls so far, skipped frames included), ``skipped`` (the latest ``SkippedFrame`` reports).
    """

    def __init__(
        self, engine: TrackingEngine, *, prune: bool = True, max_prompt_frames: int | None = MAX_PROMPT_FRAMES
    ):
        if max_prompt_frames is not None and (
            not isinstance(max_prompt_frames, int)
            or isinstance(max_prompt_frames, bool)
            or max_prompt_frames < 1
        ):
            raise InputError("max_prompt_frames", "a positive number of frames, or None", max_prompt_frames)
        self.max_prompt_frames = max_prompt_frames
        self.engine = engine
        facts = engine.facts
        self.policy = (
            RetentionPolicy.for_model(facts.num_maskmem, facts.max_object_pointers) if prune else None
        )
        self.objects: dict[int, ObjectMemory] = {}
        self.pending: dict[int, VideoPrompt] = {}
        self.frame_size: tuple[int, int] | None = None
        self.frame_index = -1
        self.positions = 0
        self.skipped: deque[SkippedFrame] = deque(maxlen=MAX_SKIPPED)

    @property
    def object_ids(self) -> list[int]:
        return list(self.objects)

    def add(
        self, obj_id: int, points: Any = None, labels: Any = None, box: Any = None, mask: Any = None
    ) -> None:
        """Prompt object ``obj_id`` on the next frame (a new object, or a fresh start for a tracked one)."""
        obj_id = check_obj_id(obj_id)
        self.pending[obj_id] = make_prompt(self.frame_size, points=points, labels=labels, box=box, mask=mask)

    def remove(self, obj_id: int) -> None:
        """Stop tracking ``obj_id`` (and drop a prompt still waiting for it)."""
        if obj_id not in self.objects and obj_id not in self.pending:
            raise InputError("obj_id", f"one of the tracked objects {self.object_ids}", obj_id)
        self.objects.pop(obj_id, None)
        self.pending.pop(obj_id, None)

    def reset(self) -> None:
        """Forget every object and prompt; the next frame starts a new stream."""
        self.objects.clear()
        self.pending.clear()
        self.frame_size = None
        self.frame_index = -1
        self.positions = 0
        self.skipped.clear()

    def step(self, frame: Any) -> dict[int, Track]:
        """Track every object on the next frame (RGB uint8 (H, W, 3), PIL image or path)."""
        position = self.positions
        self.positions += 1
        try:
            rgb = load_image(frame, argument=f"frame {position}")
        except InputError as error:
            self.skipped.append(SkippedFrame(position, str(error)))
            logger.warning("skipped frame %d of the stream: %s", position, error)
            return {}
        size = (int(rgb.shape[0]), int(rgb.shape[1]))
        if self.frame_size is not None and size != self.frame_size:
            raise InputError(
                f"frame {position}",
                f"the stream's frame size {self.frame_size[1]}x{self.frame_size[0]} (W x H; live.reset() to change it)",
                f"{size[1]}x{size[0]}",
            )
        self.pending = {obj_id: check_against_frame(p, size) for obj_id, p in self.pending.items()}
        self.frame_size = size
        self.frame_index += 1
        index = self.frame_index
        jobs = [Job(memory=m) for obj_id, m in self.objects.items() if obj_id not in self.pending]
        for obj_id, prompt in self.pending.items():
            memory = self.objects.setdefault(obj_id, ObjectMemory(obj_id))
            jobs.append(Job(memory=memory, prompt=prompt, conditioning=True))
        self.pending = {}
        if not jobs:
            return {}
        records = self.engine.step(index, self.engine.features(rgb), jobs, size, None)
        ordered = {obj_id: records[obj_id] for obj_id in self.objects if obj_id in records}
        tracks = records_to_tracks(ordered, size)
        if self.max_prompt_frames is not None:
            for memory in self.objects.values():
                for frame in sorted(memory.cond)[: -self.max_prompt_frames]:
                    del memory.cond[frame]
                    memory.prompts.pop(frame, None)
        if self.policy is not None:
            for memory in self.objects.values():
                self.policy.prune(memory, index)
        return tracks

    def nbytes(self) -> int:
        """Bytes of tensors the stream holds for its objects (the shared position encoding not counted)."""
        return sum(memory.nbytes() for memory in self.objects.values())
