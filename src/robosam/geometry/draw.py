"""Drawing 3D results on the image for humans: the object's box and its grasps, projected with the intrinsics."""

from __future__ import annotations

import cv2
import numpy as np

from robosam.geometry.intrinsics import CameraIntrinsics
from robosam.geometry.types import Grasp, ObjectPose

# Corner index pairs of the 12 box edges (corners ordered as ObjectPose.corners: x slowest, z fastest).
_EDGES = [(0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7)]


def draw_grasps(
    rgb: np.ndarray,
    intrinsics: CameraIntrinsics,
    obj: ObjectPose | None = None,
    grasps: list[Grasp] | None = None,
    mask: np.ndarray | None = None,
    top_k: int = 3,
) -> np.ndarray:
    """RGB uint8 (H, W, 3) copy of ``rgb`` with the mask tinted, the object's box in white and the best
    ``top_k`` grasps (camera frame): fingers as two bars along the approach, the closing line between the
    fingertips and the approach as a short line; the best grasp in green, the others in yellow."""
    canvas = rgb.copy()
    if mask is not None:
        tint = np.array((30, 144, 255), dtype=np.float32)
        canvas[mask] = (0.6 * canvas[mask] + 0.4 * tint).astype(np.uint8)
    thickness = max(1, round(min(rgb.shape[:2]) / 240))
    if obj is not None:
        pixels = intrinsics.project(obj.corners())
        for a, b in _EDGES:
            _line(canvas, pixels[a], pixels[b], (255, 255, 255), thickness)
    for rank, grasp in reversed(list(enumerate((grasps or [])[:top_k]))):
        colour = (0, 230, 0) if rank == 0 else (255, 210, 0)
        closing, approach = grasp.closing_vector, grasp.approach_vector
        tips = [grasp.position + side * closing * grasp.width / 2 for side in (-1.0, 1.0)]
        backs = [tip - approach * 0.04 for tip in tips]
        pixels = intrinsics.project(
            np.array([*tips, *backs, grasp.position - approach * 0.1, grasp.position])
        )
        _line(canvas, pixels[0], pixels[1], colour, thickness)
        _line(canvas, pixels[0], pixels[2], colour, thickness + 1)
        _line(canvas, pixels[1], pixels[3], colour, thickness + 1)
        _line(canvas, pixels[4], (pixels[2] + pixels[3]) / 2, colour, thickness)
        _line(canvas, pixels[2], pixels[3], colour, thickness)
    return canvas


def _line(
    canvas: np.ndarray, a: np.ndarray, b: np.ndarray, colour: tuple[int, int, int], thickness: int
) -> None:
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return
    limit = 4 * max(canvas.shape)  # keep far-off projections inside cv2's coordinate range
    a = np.clip(a, -limit, limit)
    b = np.clip(b, -limit, limit)
    cv2.line(canvas, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), colour, thickness, cv2.LINE_AA)
