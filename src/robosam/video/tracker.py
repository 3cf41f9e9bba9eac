"""``VideoTracker``: one video model, many sessions (recorded video) and live streams (cameras)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from robosam.errors import InputError
from robosam.io.frames import open_frames
from robosam.onnx_runtime import is_export_folder
from robosam.video.live import MAX_PROMPT_FRAMES, LiveTracker
from robosam.video.session import TrackingSession

if TYPE_CHECKING:
    import torch


class VideoTracker:
    """Track objects through videos and live streams with SAM 2 / 2.1, the SAM 3 tracker or EdgeTAM.

    model: a preset (``sam2.1-hiera-tiny``), hub id, local folder, official SAM 2 / 2.1 checkpoint (``.pt``,
        loaded with its video modules), a transformers video model (``Sam2VideoModel``,
        ``Sam3TrackerVideoModel``, ``EdgeTamVideoModel``), or a folder written by ``robosam export onnx`` from a
        SAM 2 video model (run by ONNX Runtime: ``robosam.video.onnx_backend``, with no torch or transformers
        import).
    device: ``auto`` (cuda, mps, cpu) or a torch device. dtype: float32 (default) or bfloat16 / float16
        (float32 only for an exported folder).
    max_batch: most objects tracked in one batched call.

    >>> trk = VideoTracker("sam2.1-hiera-tiny")
    >>> with trk.session("video.mp4") as s:
    ...     s.add(frame=0, obj_id=1, points=[(210, 350)], labels=[1])
    ...     for frame, tracks in s.propagate(): ...
    >>> live = trk.stream(); live.add(obj_id=1, box=(10, 20, 200, 220)); tracks = live.step(camera_frame)
    """

    def __init__(
        self,
        model: Any = "sam2.1-hiera-tiny",
        device: str | torch.device = "auto",
        dtype: str | torch.dtype | None = None,
        max_batch: int = 16,
    ):
        if isinstance(model, (str, os.PathLike)) and is_export_folder(model):
            from robosam.video.onnx_backend import OnnxTrackingEngine

            if dtype is not None and str(dtype) not in ("float32", "torch.float32"):
                raise InputError("dtype", "float32 for an exported ONNX folder", dtype)
            self.engine: Any = OnnxTrackingEngine(model, device=str(device), max_batch=max_batch)
            self.model = self.engine.model
            return
        from robosam.video.engine import TrackingEngine  # torch and transformers load here, not for ONNX
        from robosam.video.loading import _load_video_model

        self.model = _load_video_model(model, device=device, dtype=dtype)
        self.engine = TrackingEngine(self.model, max_batch=max_batch)

    @property
    def family(self) -> str:
        """``sam2``, ``sam3_tracker`` or ``edgetam``."""
        return self.engine.facts.family

    @property
    def device(self) -> Any:
        """The torch device the model runs on (``"cpu"`` for an exported folder: where its memory lives)."""
        return self.engine.device

    def session(self, source: Any, *, keep_history: bool = True) -> TrackingSession:
        """A session over a folder of frames, a video file, a sequence or an iterator of frames.

        keep_history: keep every frame's memory (corrections anywhere, both directions); False keeps only
        what forward tracking reads (flat memory on long videos).
        """
        return TrackingSession(self.engine, open_frames(source), keep_history=keep_history)

    def stream(self, *, prune: bool = True, max_prompt_frames: int | None = MAX_PROMPT_FRAMES) -> LiveTracker:
        """A live stream: ``add`` prompts for the next frame, ``step(frame)`` per camera frame (``LiveTracker``
        gives the options)."""
        return LiveTracker(self.engine, prune=prune, max_prompt_frames=max_prompt_frames)
