"""Tracking results on disk: per-frame palette PNGs of object ids (the DAVIS layout) and a JSON of COCO RLE.

PNGs: one ``NNNNN.png`` per frame, mode ``P`` with the DAVIS palette, pixel value = object id (0 background),
what the DAVIS-2017 evaluation and ``robosam eval --pred`` read. Where masks overlap, the higher id wins.
JSON: per frame and object the COCO RLE mask, box ``[x, y, w, h]``, area, score, presence and visibility.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from robosam.errors import InputError
from robosam.io.files import write_json_atomic
from robosam.masks import write_png_atomic
from robosam.results import Track


def davis_palette() -> np.ndarray:
    """The 256-colour palette of DAVIS / PASCAL VOC annotations (256, 3) uint8 (bit-interleaved index)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, red, green, blue = index, 0, 0, 0
        for bit in range(8):
            red |= ((value >> 0) & 1) << (7 - bit)
            green |= ((value >> 1) & 1) << (7 - bit)
            blue |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (red, green, blue)
    return palette


DAVIS_PALETTE = davis_palette()


def tracks_to_ids(tracks: dict[int, Track], frame_hw: tuple[int, int]) -> np.ndarray:
    """Object-id image (H, W) uint8: each visible object's mask painted with its id, higher ids on top."""
    ids = np.zeros(frame_hw, dtype=np.uint8)
    for obj_id in sorted(tracks):
        if not 1 <= obj_id <= 255:
            raise InputError("obj_id", "object ids 1..255 for palette PNGs", obj_id)
        ids[tracks[obj_id].mask] = obj_id
    return ids


def write_palette_png(ids: np.ndarray, path: str | os.PathLike) -> Path:
    """An object-id image (H, W) uint8 as a DAVIS palette PNG, written atomically."""
    image = Image.fromarray(ids, mode="P")
    image.putpalette(DAVIS_PALETTE.reshape(-1).tolist())
    return write_png_atomic(image, path)


class MaskFolderWriter:
    """Writes ``folder/NNNNN.png`` (palette, object ids) for each frame given."""

    def __init__(self, folder: str | os.PathLike, digits: int = 5):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.digits = digits

    def write(self, frame: int, tracks: dict[int, Track], frame_hw: tuple[int, int]) -> Path:
        return write_palette_png(
            tracks_to_ids(tracks, frame_hw), self.folder / f"{frame:0{self.digits}d}.png"
        )


class TrackLog:
    """Every frame's tracks as JSON-ready records (COCO RLE), kept compact until written."""

    def __init__(self, **metadata: Any):
        self.metadata = metadata
        self.frames: dict[int, list[dict[str, Any]]] = {}

    def add(self, frame: int, tracks: dict[int, Track]) -> None:
        self.frames[int(frame)] = [tracks[obj_id].to_dict() for obj_id in sorted(tracks)]

    def visible_counts(self) -> dict[int, int]:
        """obj_id -> number of frames it was visible on."""
        counts: dict[int, int] = {}
        for records in self.frames.values():
            for record in records:
                counts[record["obj_id"]] = counts.get(record["obj_id"], 0) + int(record["visible"])
        return counts

    def to_dict(self) -> dict[str, Any]:
        objects = sorted({r["obj_id"] for records in self.frames.values() for r in records})
        return {
            **self.metadata,
            "objects": objects,
            "frames": [{"frame": frame, "objects": self.frames[frame]} for frame in sorted(self.frames)],
        }

    def write(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(self.to_dict(), path)
