"""Prompts for many objects on many frames, from a JSON file (``robosam track --prompts prompts.json``).

Format: a list (or ``{"prompts": [...]}``) of entries, each with ``frame`` and ``obj_id`` and one of
``points`` ([[x, y], ...] with optional ``labels`` [1, 0, ...]) and / or ``box`` ([x1, y1, x2, y2]), or ``mask``
(a PNG path, relative to the JSON file's folder; any non-zero pixel is the object)::

    [{"frame": 0, "obj_id": 1, "points": [[210, 350]], "labels": [1]},
     {"frame": 0, "obj_id": 2, "box": [300, 0, 500, 400]},
     {"frame": 5, "obj_id": 3, "mask": "obj3.png"}]
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.masks import read_mask_png

KEYS = {"frame", "obj_id", "points", "labels", "box", "mask"}


@dataclass
class PromptSpec:
    """One object's prompt on one frame, as ``session.add`` takes it (mask already read)."""

    frame: int
    obj_id: int
    points: list[list[float]] | None = None
    labels: list[int] | None = None
    box: list[float] | None = None
    mask: np.ndarray | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``session.add`` / ``live.add`` (without ``frame``)."""
        out: dict[str, Any] = {"obj_id": self.obj_id}
        for key in ("points", "labels", "box", "mask"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def read_prompt_file(path: str | os.PathLike) -> list[PromptSpec]:
    """Read and check a prompts JSON file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("--prompts", "an existing JSON file", str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError("--prompts", "a valid JSON file", str(path), detail=str(error)) from None
    entries = data.get("prompts") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise InputError(
            "--prompts", 'a non-empty list of prompts (or {"prompts": [...]})', type(data).__name__
        )
    return [_entry(entry, i, path.parent) for i, entry in enumerate(entries)]


def _entry(entry: Any, index: int, folder: Path) -> PromptSpec:
    where = f"prompts[{index}]"
    if not isinstance(entry, dict):
        raise InputError(where, "an object with frame, obj_id and points / box / mask", entry)
    unknown = set(entry) - KEYS
    if unknown:
        raise InputError(where, f"only the keys {', '.join(sorted(KEYS))}", sorted(unknown))
    for key in ("frame", "obj_id"):
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{where}.{key}", "a non-negative integer", value)
    if not any(key in entry for key in ("points", "box", "mask")):
        raise InputError(where, "points, box or mask", None)
    mask = None
    if "mask" in entry:
        if not isinstance(entry["mask"], str):
            raise InputError(f"{where}.mask", "a PNG path", entry["mask"])
        mask = read_mask_png(folder / entry["mask"], argument=f"{where}.mask")
    return PromptSpec(
        frame=entry["frame"],
        obj_id=entry["obj_id"],
        points=entry.get("points"),
        labels=entry.get("labels"),
        box=entry.get("box"),
        mask=mask,
    )
