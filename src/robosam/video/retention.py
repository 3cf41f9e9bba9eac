"""Which records the memory attention will still read, and dropping the rest.

After frame t (going forwards) the next frame t + 1 reads:
- every conditioning frame (the model attends to all of them, ``max_cond_frame_num = -1`` in every release),
- the spatial memory of the ``num_maskmem - 1`` frames before it: t + 2 - num_maskmem ... t,
- the object pointers of the ``max_object_pointers - 1`` frames before it: t + 2 - max_object_pointers ... t.
Anything older is never read again by a forward stream, so dropping it leaves every later mask unchanged.
Low-resolution logits are read by nobody once returned (only a correction prompt on that same frame would
use them, which a live stream cannot receive).
"""

from __future__ import annotations

from dataclasses import dataclass

from robosam.video.memory import ObjectMemory


@dataclass(frozen=True)
class RetentionPolicy:
    """How much tracked history to keep behind the current frame.

    memory_frames: tracked frames whose spatial memory is kept (the model reads ``num_maskmem - 1``).
    pointer_frames: tracked frames whose object pointer is kept (the model reads ``max_object_pointers - 1``).
    keep_logits: keep each frame's low-resolution logits (needed to correct a past frame in a session).
    Use :meth:`for_model` for the smallest policy that leaves the masks unchanged.
    """

    memory_frames: int
    pointer_frames: int
    keep_logits: bool = False

    @classmethod
    def for_model(
        cls, num_maskmem: int, max_object_pointers: int, keep_logits: bool = False
    ) -> RetentionPolicy:
        return cls(
            memory_frames=max(num_maskmem - 1, 0),
            pointer_frames=max(max_object_pointers - 1, 0),
            keep_logits=keep_logits,
        )

    def prune(self, memory: ObjectMemory, frame: int, reverse: bool = False) -> None:
        """Drop what tracking on from ``frame`` (in the given direction) will not read."""
        sign = -1 if reverse else 1
        for index in list(memory.tracked):
            age = (frame - index) * sign  # frames behind the current one (negative: ahead of it)
            if age < 0:
                continue
            record = memory.tracked[index]
            if age >= self.pointer_frames and age >= self.memory_frames:
                del memory.tracked[index]
                continue
            if age >= self.memory_frames:
                record.maskmem_features = None
                record.maskmem_pos_enc = None
            if not self.keep_logits and not record.prompted:
                record.logits = None
        if not self.keep_logits:
            for record in memory.cond.values():
                record.logits = None
