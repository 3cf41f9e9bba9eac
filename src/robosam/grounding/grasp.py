"""Language-guided grasping: "red cup" and an RGB-D frame to the best match's 3D pose and ranked grasps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.geometry import CameraIntrinsics, ObjectGrasps, grasp_from_mask
from robosam.io import load_image
from robosam.results import MaskResult


@dataclass
class TextGrasp:
    """match: the segmented object (a one-mask ``MaskResult`` with its label and detector score).
    found: its cloud, support plane, pose and ranked grasps (``ObjectGrasps``)."""

    match: MaskResult
    found: ObjectGrasps

    def to_dict(self) -> dict[str, Any]:
        record = self.match.to_coco()[0]
        return {
            "match": {
                "label": str(self.match.labels[0]),
                "score": record["score"],
                "bbox": record["bbox"],
                "area": record["area"],
            },
            **self.found.to_dict(),
        }


def grasp_from_text(
    text_segmenter: Any,
    rgb: Any,
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    text: str,
    depth_scale: float | None = None,
    *,
    box_threshold: float = 0.3,
    text_threshold: float = 0.25,
    **grasp_options: Any,
) -> TextGrasp | None:
    """Segment the best match of ``text`` in ``rgb`` and plan grasps on it, or None when nothing matches.

    text_segmenter: a ``TextSegmenter``. rgb: (H, W, 3) image registered to depth (H, W); intrinsics and
    depth_scale as for ``grasp_from_mask`` (REP 118 units when None). The best match is the detection with
    the highest score (the CLIP score when the segmenter has a ranker). grasp_options go to
    ``grasp_from_mask`` (gripper_width, gripper, z_range, clean, support, camera_to_base).
    """
    image = load_image(rgb, argument="rgb")
    depth = np.asarray(depth)
    if image.shape[:2] != depth.shape[:2]:
        raise InputError(
            "rgb", f"an image of the depth image's size {depth.shape[1]}x{depth.shape[0]}", image
        )
    result = text_segmenter.segment(image, text, box_threshold=box_threshold, text_threshold=text_threshold)
    if not len(result):
        return None
    match = result[0]
    found = grasp_from_mask(match.masks[0], depth, intrinsics, depth_scale, rgb=image, **grasp_options)
    return TextGrasp(match=match, found=found)
