"""Parallel-jaw grasp candidates from an object's oriented bounding box.

Candidates close across a horizontal side of the box that fits in the gripper, approaching from the top
(against the "up" direction) or from a side (parallel to the support). Each is checked against the support
plane with a box model of the hand (two fingers and a palm) and dropped when any part comes closer to it
than ``clearance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.geometry.types import Grasp, ObjectPose, Plane, as_transform

_APPROACH_PREFERENCE = {"top": 1.0, "side": 0.8}
_WEIGHTS = {"fit": 0.35, "depth": 0.25, "centred": 0.25, "approach": 0.15}


@dataclass(frozen=True)
class Gripper:
    """Box model of a parallel-jaw hand, metres (defaults near a Franka Hand).

    finger_depth: finger length along the approach. finger_width: finger size across the closing line.
    finger_thickness: finger size along the closing line. palm_depth, palm_height: the hand body behind
    the fingers, along the approach and across the closing line. jaw_margin: opening left on each side of
    the object before closing.
    """

    finger_depth: float = 0.045
    finger_width: float = 0.02
    finger_thickness: float = 0.01
    palm_depth: float = 0.06
    palm_height: float = 0.06
    jaw_margin: float = 0.005

    def __post_init__(self) -> None:
        for name in ("finger_depth", "finger_width", "finger_thickness", "palm_depth", "palm_height"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise InputError(f"gripper.{name}", "a positive length in metres", value)
        if not (isinstance(self.jaw_margin, (int, float)) and 0 <= self.jaw_margin < 1):
            raise InputError("gripper.jaw_margin", "a length >= 0 in metres", self.jaw_margin)


def grasp_candidates(
    obj: ObjectPose,
    gripper_width: float = 0.08,
    *,
    support: Plane | None = None,
    gripper: Gripper | None = None,
    approaches: Sequence[str] = ("top", "side"),
    clearance: float = 0.005,
    camera_to_base: Any = None,
    max_candidates: int | None = None,
) -> list[Grasp]:
    """Ranked parallel-jaw grasps for one object, best first.

    obj: the object's ObjectPose (from ``object_pose``), in the camera frame. gripper_width: the hand's
    maximum jaw opening in metres; sides wider than that (plus the jaw margins) are never grasped across.
    support: the plane the object stands on, in the same frame; it defines "up" and candidates whose hand
    would come within ``clearance`` metres of it are dropped. Without it, up is the box axis of an upright
    pose, else base +z when ``camera_to_base`` is given, else the direction towards the camera.
    approaches: any of "top", "side". camera_to_base: optional (4, 4) rigid transform; the grasps are then
    returned in the base frame (``frame == "base"``). max_candidates: keep only the best this many.
    Returns a list of Grasp sorted by decreasing score (empty when nothing fits).
    """
    if not isinstance(obj, ObjectPose):
        raise InputError("obj", "an ObjectPose (from object_pose)", type(obj).__name__)
    if not (isinstance(gripper_width, (int, float, np.floating)) and np.isfinite(gripper_width)) or not (
        gripper_width > 0
    ):
        raise InputError("gripper_width", "a positive jaw opening in metres", gripper_width)
    gripper = gripper or Gripper()
    if not isinstance(gripper, Gripper):
        raise InputError("gripper", "a Gripper", type(gripper).__name__)
    if isinstance(approaches, str) or not approaches or not set(approaches) <= set(_APPROACH_PREFERENCE):
        raise InputError("approaches", "a non-empty list of 'top' and/or 'side'", approaches)
    if support is not None and not isinstance(support, Plane):
        raise InputError("support", "a Plane (from fit_plane) or None", type(support).__name__)
    if not (isinstance(clearance, (int, float, np.floating)) and clearance >= 0):
        raise InputError("clearance", "a distance >= 0 in metres", clearance)
    base = as_transform(camera_to_base, "camera_to_base") if camera_to_base is not None else None
    if max_candidates is not None and (not isinstance(max_candidates, int) or max_candidates < 1):
        raise InputError("max_candidates", "a positive integer or None", max_candidates)

    up = _up_direction(obj, support, base)
    vertical = int(np.argmax(np.abs(obj.rotation.T @ up)))
    v_axis = obj.rotation[:, vertical] * np.sign(obj.rotation[:, vertical] @ up)
    horizontal = [i for i in range(3) if i != vertical]
    height = float(obj.extents[vertical])
    top_centre = obj.center + v_axis * height / 2

    grasps: list[Grasp] = []
    for closing in horizontal:
        other = horizontal[0] if closing == horizontal[1] else horizontal[1]
        span = float(obj.extents[closing])
        width = span + 2 * gripper.jaw_margin
        if width > gripper_width:
            continue
        fit = 1.0 - span / gripper_width
        c_axis = obj.rotation[:, closing]
        o_axis = obj.rotation[:, other]
        if "top" in approaches:
            depth = min(gripper.finger_depth, height)
            if support is not None:  # keep the fingertips above the support
                depth = min(depth, float(support.distance(top_centre)[0]) - clearance)
            half_length = float(obj.extents[other]) / 2
            for fraction in _offsets(half_length, gripper.finger_width):
                position = top_centre - v_axis * depth + o_axis * fraction * half_length
                grasps.append(
                    _make(position, -v_axis, c_axis, width, depth, "top", gripper, fit, 1.0 - abs(fraction))
                )
        if "side" in approaches:
            reach = float(obj.extents[other])
            depth = min(gripper.finger_depth, reach)
            position_up = _side_height(obj.center, v_axis, height, support, gripper, clearance)
            for sign in (1.0, -1.0):
                face = obj.center + sign * o_axis * reach / 2
                position = face - sign * o_axis * depth + v_axis * position_up
                grasps.append(
                    _make(position, -sign * o_axis, c_axis, width, depth, "side", gripper, fit, 1.0)
                )

    grasps = [
        g for g in grasps if g.depth > 0 and not _hits_support(g, gripper, support, clearance, gripper_width)
    ]
    grasps.sort(key=lambda g: -g.score)
    if base is not None:
        grasps = [g.transformed(base, frame="base") for g in grasps]
    return grasps[:max_candidates] if max_candidates else grasps


def _up_direction(obj: ObjectPose, support: Plane | None, base: np.ndarray | None) -> np.ndarray:
    if support is not None:
        return support.normal / np.linalg.norm(support.normal)
    if obj.upright:
        return obj.rotation[:, 2]
    if base is not None:
        return base[:3, :3].T @ np.array([0.0, 0.0, 1.0])
    norm = np.linalg.norm(obj.center)
    return -obj.center / norm if norm > 0 else np.array([0.0, 0.0, -1.0])


def _offsets(half_length: float, finger_width: float) -> list[float]:
    """Grasp positions along the box's other side, as fractions of its half length (centre first)."""
    return [0.0, -0.5, 0.5] if half_length > finger_width else [0.0]


def _side_height(
    centre: np.ndarray,
    v_axis: np.ndarray,
    height: float,
    support: Plane | None,
    gripper: Gripper,
    clearance: float,
) -> float:
    """Offset along up from the box centre for a side grasp: mid-height, raised so the hand clears the
    support when the object is tall enough for that."""
    if support is None:
        return 0.0
    centre_height = float(support.distance(centre)[0])
    needed = clearance + max(gripper.finger_width, gripper.palm_height) / 2 + 1e-6
    return max(0.0, needed - centre_height) if needed < centre_height + height / 2 else 0.0


def _make(
    position: np.ndarray,
    approach: np.ndarray,
    closing: np.ndarray,
    width: float,
    depth: float,
    kind: str,
    gripper: Gripper,
    fit: float,
    centred: float,
) -> Grasp:
    approach = approach / np.linalg.norm(approach)
    closing = closing - (closing @ approach) * approach
    closing /= np.linalg.norm(closing)
    rotation = np.stack([np.cross(closing, approach), closing, approach], axis=1)
    score = (
        _WEIGHTS["fit"] * fit
        + _WEIGHTS["depth"] * min(depth / gripper.finger_depth, 1.0)
        + _WEIGHTS["centred"] * centred
        + _WEIGHTS["approach"] * _APPROACH_PREFERENCE[kind]
    )
    return Grasp(
        position=np.asarray(position, dtype=np.float64),
        rotation=rotation,
        width=float(width),
        score=float(np.clip(score, 0.0, 1.0)),
        approach=kind,
        depth=float(depth),
    )


def gripper_corners(grasp: Grasp, gripper: Gripper, gripper_width: float) -> np.ndarray:
    """(24, 3) corners of the hand's three boxes (two fingers at ``grasp.width``, the palm) in the grasp's
    frame. Gripper frame: origin between the fingertips, z approach, y closing."""
    half_open = grasp.width / 2
    fd, fw, ft = gripper.finger_depth, gripper.finger_width, gripper.finger_thickness
    palm_half = gripper_width / 2 + ft
    boxes = [
        ((-fw / 2, fw / 2), (half_open, half_open + ft), (-fd, 0.0)),
        ((-fw / 2, fw / 2), (-half_open - ft, -half_open), (-fd, 0.0)),
        (
            (-gripper.palm_height / 2, gripper.palm_height / 2),
            (-palm_half, palm_half),
            (-fd - gripper.palm_depth, -fd),
        ),
    ]
    local = np.array(
        [(x, y, z) for xs, ys, zs in boxes for x in xs for y in ys for z in zs], dtype=np.float64
    )
    return grasp.position + local @ grasp.rotation.T


def _hits_support(
    grasp: Grasp, gripper: Gripper, support: Plane | None, clearance: float, gripper_width: float
) -> bool:
    if support is None:
        return False
    corners = gripper_corners(grasp, gripper, gripper_width)
    return bool((support.distance(corners) < clearance - 1e-9).any())
