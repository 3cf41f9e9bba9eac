"""What one tracking step is asked to do for one object (shared by the torch and ONNX engines, torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robosam.video.memory import ObjectMemory
from robosam.video.prompts import VideoPrompt

CORRECTION_LOGIT_CLAMP = 32.0  # Meta clamps an earlier mask's logits fed back with new clicks


@dataclass
class Job:
    """One object on the frame being stepped.

    prompt: the object's new prompt on this frame, or None to track it from memory.
    conditioning: the prompt starts (or restarts) the object here without memory (the frame was not tracked
        for it), rather than correcting a tracked frame. reverse: the direction of time tracking goes in.
    previous_logits: the object's earlier logits on this frame (1, 1, L, L) (a torch tensor or numpy array, as
        the engine stores them), refined by new clicks.
    """

    memory: ObjectMemory
    prompt: VideoPrompt | None = None
    conditioning: bool = False
    reverse: bool = False
    previous_logits: Any = None
