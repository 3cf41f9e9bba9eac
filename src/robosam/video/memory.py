"""What the tracker keeps per object: one small record per frame, in two typed maps.

A ``FrameRecord`` holds what later frames read (the encoded memory and the object pointer) and what the caller
got (low-resolution logits and scores). An ``ObjectMemory`` holds an object's records on its conditioning
frames (prompted, read by every later frame) and on its tracked frames (read within the memory window), plus
its prompts. ``ModelView`` presents one object's records in the layout transformers' memory helpers read
(``output_dict_per_obj[0]["cond_frame_outputs"][frame]["maskmem_features"]``), so the torch engine lets the
model's own code select the memories and pointers. The ONNX engine, which runs without transformers, selects
them with ``robosam.video.selection`` (the same rule, tested against transformers' methods).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robosam.video.prompts import VideoPrompt

MODEL_KEYS = ("maskmem_features", "maskmem_pos_enc", "object_pointer")


@dataclass
class FrameRecord:
    """One object on one frame.

    object_pointer: (1, 1, C) token the memory attention reads for up to ``max_object_pointers`` frames.
    maskmem_features / maskmem_pos_enc: the encoded memory (SAM 2 / SAM 3: (HW, 1, 64); EdgeTAM: (1, T, 64))
        and its position encoding (one tensor shared by all frames); None once pruned.
    logits: (1, 1, L, L) float32 low-resolution mask logits (None once returned, in a live stream).
    The arrays are of the engine's kind: torch tensors (``TrackingEngine``), numpy arrays (the ONNX engine).
    score: predicted IoU of the mask. object_score: the model's object-presence logit.
    reverse: tracked backwards in time. prompted: the user's prompt made it (never re-tracked).
    """

    object_pointer: Any
    maskmem_features: Any
    maskmem_pos_enc: Any
    logits: Any
    score: float
    object_score: float
    reverse: bool = False
    prompted: bool = False

    def __getitem__(self, key: str) -> Any:
        """The model's helpers read records by these names."""
        if key not in MODEL_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def nbytes(self) -> int:
        """Bytes of the tensors this record alone holds (the shared position encoding not counted)."""
        tensors = (self.object_pointer, self.maskmem_features, self.logits)
        return sum(int(t.nbytes) for t in tensors if t is not None)  # torch tensors and numpy arrays alike


@dataclass
class ObjectMemory:
    """Everything the tracker holds about one object.

    cond: conditioning frames (frame -> record), made from prompts on frames the object was not tracked on.
    tracked: frames the model tracked the object on, and corrections (prompts on tracked frames).
    prompts: frame -> the prompt given there.
    """

    obj_id: int
    cond: dict[int, FrameRecord] = field(default_factory=dict)
    tracked: dict[int, FrameRecord] = field(default_factory=dict)
    prompts: dict[int, VideoPrompt] = field(default_factory=dict)

    def record(self, frame: int) -> FrameRecord | None:
        """This object's record on ``frame`` (conditioning first), or None."""
        return self.cond.get(frame) or self.tracked.get(frame)

    def store(self, frame: int, record: FrameRecord, conditioning: bool) -> None:
        """Keep ``record`` for ``frame``; a conditioning record replaces any tracked one on the same frame."""
        if conditioning:
            self.cond[frame] = record
            self.tracked.pop(frame, None)
        else:
            self.tracked[frame] = record

    def active_at(self, frame: int, reverse: bool) -> bool:
        """Whether propagation in this direction reaches the object on ``frame``: it joins at its first
        conditioning frame (its last one, going backwards)."""
        if not self.cond:
            return False
        return min(self.cond) <= frame if not reverse else max(self.cond) >= frame

    def nbytes(self) -> int:
        return sum(r.nbytes() for r in (*self.cond.values(), *self.tracked.values()))


class ModelView:
    """One object's records in the layout transformers' ``_gather_memory_frame_outputs`` and
    ``_get_object_pointers`` read, as object index 0."""

    def __init__(self, memory: ObjectMemory):
        self.output_dict_per_obj = {
            0: {"cond_frame_outputs": memory.cond, "non_cond_frame_outputs": memory.tracked}
        }
