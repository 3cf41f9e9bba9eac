"""An overlay video for humans: each tracked object's mask in its palette colour, outlined, with its id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from robosam.results import Track
from robosam.video.writers import DAVIS_PALETTE


def draw_tracks(rgb: np.ndarray, tracks: dict[int, Track], alpha: float = 0.5) -> np.ndarray:
    """RGB uint8 (H, W, 3) with every visible object blended in its DAVIS colour, outlined, id at its box."""
    canvas = rgb.astype(np.float32)
    for obj_id, track in tracks.items():
        colour = DAVIS_PALETTE[obj_id % 256].astype(np.float32)
        canvas[track.mask] = (1.0 - alpha) * canvas[track.mask] + alpha * colour
    out = canvas.clip(0, 255).astype(np.uint8)
    scale = max(0.4, min(rgb.shape[:2]) / 600)
    for obj_id, track in tracks.items():
        if not track.mask.any():
            continue
        colour = DAVIS_PALETTE[obj_id % 256].tolist()
        contours, _ = cv2.findContours(
            track.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(out, contours, -1, colour, thickness=max(1, round(2 * scale)))
        x, y = int(track.box[0]), max(int(track.box[1]), int(12 * scale))
        cv2.putText(
            out, str(obj_id), (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA
        )
        cv2.putText(out, str(obj_id), (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    return out


class OverlayVideoWriter:
    """Writes an H.264 mp4 with PyAV, one frame per ``write``; odd sizes are padded by one pixel (yuv420p
    needs even sides). The file is written beside ``path`` and renamed into place on ``close`` (a crash
    leaves no half video). Use as a context manager or call ``close``."""

    def __init__(self, path: str | os.PathLike, fps: float = 25.0, codec: str = "libx264"):
        from fractions import Fraction

        import av

        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix}")
        self._container: Any = av.open(str(self._tmp), "w")
        self._stream: Any = self._container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        self._stream.pix_fmt = "yuv420p"
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, rgb: np.ndarray, tracks: dict[int, Track]) -> None:
        import av

        image = draw_tracks(rgb, tracks)
        height, width = image.shape[:2]
        if self._size is None:
            self._size = (height + height % 2, width + width % 2)
            self._stream.height, self._stream.width = self._size
        pad_h, pad_w = self._size[0] - height, self._size[1] - width
        if pad_h or pad_w:
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        self._container.mux(self._stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        if self._container is not None:
            if self._size is not None:
                self._container.mux(self._stream.encode())
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop and remove the partial file."""
        if self._container is not None:
            self._container.close()
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> OverlayVideoWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
