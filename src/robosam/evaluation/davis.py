"""J&F scoring of DAVIS-layout folders: one folder of palette PNGs per sequence, as the DAVIS-2017 tools read them.

The protocol is the semi-supervised one of the DAVIS-2017 evaluation: the objects of a sequence are the ids
1..K where K is the largest id in its first ground-truth frame; 255 in the ground truth is void (treated as
background); the first and last frames are not scored (the first is the given prompt); a predicted id above K
is an error and a missing id scores as an empty mask. Each object gets J and F per frame and their mean,
recall and decay; the global figures average over objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from robosam.errors import InputError
from robosam.evaluation.metrics import (
    DAVIS_BOUNDARY_TOLERANCE,
    SequenceStatistics,
    boundary_f1,
    iou,
    sequence_statistics,
)

VOID_ID = 255
GLOBAL_KEYS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


@dataclass
class ObjectScores:
    """Per-frame J and F of one object in one sequence.

    frames: names (file stems) of the scored frames. j, f: (T,) float64, one value per scored frame.
    """

    sequence: str
    object_id: int
    frames: list[str]
    j: np.ndarray
    f: np.ndarray

    @property
    def name(self) -> str:
        """The official key ``<sequence>_<object id>``."""
        return f"{self.sequence}_{self.object_id}"

    @property
    def j_stats(self) -> SequenceStatistics:
        return sequence_statistics(self.j)

    @property
    def f_stats(self) -> SequenceStatistics:
        return sequence_statistics(self.f)

    def to_dict(self) -> dict[str, float]:
        """``J&F-Mean``, ``J-Mean``, ``J-Recall``, ``J-Decay``, ``F-Mean``, ``F-Recall``, ``F-Decay``."""
        j, f = self.j_stats, self.f_stats
        return {
            "J&F-Mean": (j.mean + f.mean) / 2,
            "J-Mean": j.mean,
            "J-Recall": j.recall,
            "J-Decay": j.decay,
            "F-Mean": f.mean,
            "F-Recall": f.recall,
            "F-Decay": f.decay,
        }


@dataclass
class DavisScores:
    """J&F of many objects: ``global_metrics()`` and ``per_object()`` use the official evaluator's names."""

    objects: list[ObjectScores] = field(default_factory=list)

    def per_object(self) -> dict[str, dict[str, float]]:
        return {obj.name: obj.to_dict() for obj in self.objects}

    def per_sequence(self) -> dict[str, float]:
        """J&F-Mean of each sequence (average over its objects), in the order first seen."""
        grouped: dict[str, list[float]] = {}
        for obj in self.objects:
            grouped.setdefault(obj.sequence, []).append(obj.to_dict()["J&F-Mean"])
        return {name: float(np.mean(values)) for name, values in grouped.items()}

    def global_metrics(self) -> dict[str, float]:
        """Each figure averaged over objects; ``J&F-Mean`` = (J-Mean + F-Mean) / 2. NaN when empty."""
        if not self.objects:
            return {key: float("nan") for key in GLOBAL_KEYS}
        rows = [obj.to_dict() for obj in self.objects]
        means = {key: float(np.mean([row[key] for row in rows])) for key in GLOBAL_KEYS[1:]}
        return {"J&F-Mean": (means["J-Mean"] + means["F-Mean"]) / 2, **means}

    def to_dict(self) -> dict[str, Any]:
        return {
            "global": self.global_metrics(),
            "per_object": self.per_object(),
            "per_sequence": self.per_sequence(),
            "frames_scored": {obj.name: len(obj.frames) for obj in self.objects},
        }


def read_index_png(path: Path, argument: str) -> np.ndarray:
    """A palette (or 8-bit gray) PNG to its index array (H, W) uint8; any other image mode is an InputError."""
    try:
        with Image.open(path) as pil:
            if pil.mode not in ("P", "L", "1"):
                raise InputError(
                    argument, "palette or 8-bit gray PNGs of object ids", f"{path} (mode {pil.mode})"
                )
            return np.asarray(pil, dtype=np.uint8)
    except OSError as error:
        raise InputError(argument, "readable PNG files", str(path), detail=str(error)) from error


def sequence_folders(root: Path, argument: str) -> dict[str, Path]:
    """Sequence name -> folder for every sub-folder of ``root`` holding PNGs (a ``480p`` level is stepped into)."""
    if not root.is_dir():
        raise InputError(argument, "an existing folder with one sub-folder of PNGs per sequence", str(root))
    if (root / "480p").is_dir() and not any(root.glob("*/*.png")):
        root = root / "480p"
    found = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and any(p.glob("*.png"))}
    if not found:
        raise InputError(argument, "a folder with one sub-folder of PNGs per sequence", str(root))
    return found


def score_masks(
    pred: np.ndarray, gt: np.ndarray, tolerance: float = DAVIS_BOUNDARY_TOLERANCE
) -> tuple[np.ndarray, np.ndarray]:
    """J and F for a stack of frames of one object. pred, gt: (T, H, W) bool. Returns two (T,) float64."""
    return np.atleast_1d(iou(pred, gt)), np.atleast_1d(boundary_f1(pred, gt, tolerance))


def score_sequence(
    pred_dir: Path,
    gt_dir: Path,
    *,
    sequence: str | None = None,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
    skip_first_last: bool = True,
) -> list[ObjectScores]:
    """Score one sequence folder of predicted id PNGs against its ground-truth folder (see module docstring).

    Returns one ObjectScores per ground-truth object id 1..K.
    """
    sequence = sequence or gt_dir.name
    gt_files = sorted(gt_dir.glob("*.png"))
    if not gt_files:
        raise InputError("gt", f"PNG frames in {gt_dir}", "none")
    first = read_index_png(gt_files[0], "gt")
    first = np.where(first == VOID_ID, 0, first)
    n_objects = int(first.max())
    if skip_first_last:
        gt_files = gt_files[1:-1]
    if not gt_files or n_objects == 0:
        return []
    frames = [p.stem for p in gt_files]
    gt = np.stack([read_index_png(p, "gt") for p in gt_files])
    gt[gt == VOID_ID] = 0
    pred = np.empty_like(gt)
    for i, name in enumerate(frames):
        path = pred_dir / f"{name}.png"
        if not path.is_file():
            raise InputError("pred", f"a predicted frame {name}.png for sequence {sequence}", str(pred_dir))
        frame = read_index_png(path, "pred")
        if frame.shape != gt.shape[1:]:
            raise InputError(
                "pred", f"frames of size {gt.shape[1:]} in {sequence}", f"{frame.shape} in {path}"
            )
        pred[i] = frame
    top = int(pred.max())
    if top > n_objects:
        raise InputError(
            "pred",
            f"object ids up to {n_objects} in sequence {sequence} (from its first ground-truth frame)",
            top,
        )
    scores = []
    for object_id in range(1, n_objects + 1):
        j, f = score_masks(pred == object_id, gt == object_id, tolerance)
        scores.append(ObjectScores(sequence=sequence, object_id=object_id, frames=frames, j=j, f=f))
    return scores


def evaluate_folders(
    pred: str | Path,
    gt: str | Path,
    sequences: Sequence[str] | None = None,
    *,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
    skip_first_last: bool = True,
    on_sequence: Callable[[str], None] | None = None,
) -> DavisScores:
    """Score DAVIS-layout prediction folders against ground-truth folders; no model involved.

    pred, gt: folders with one sub-folder of palette PNGs per sequence (named by frame, e.g. ``00001.png``).
    sequences: names to score (default: every ground-truth sequence). on_sequence: called with each name
    after it is scored (for progress bars).
    """
    pred_seqs = sequence_folders(Path(pred), "pred")
    gt_seqs = sequence_folders(Path(gt), "gt")
    names = list(sequences) if sequences else list(gt_seqs)
    for name in names:
        if name not in gt_seqs:
            raise InputError(
                "sequences", f"names of sequences in the ground-truth folder ({', '.join(gt_seqs)})", name
            )
        if name not in pred_seqs:
            raise InputError("pred", f"a folder for sequence {name!r}", str(pred))
    result = DavisScores()
    for name in names:
        result.objects.extend(
            score_sequence(
                pred_seqs[name],
                gt_seqs[name],
                sequence=name,
                tolerance=tolerance,
                skip_first_last=skip_first_last,
            )
        )
        if on_sequence is not None:
            on_sequence(name)
    return result
