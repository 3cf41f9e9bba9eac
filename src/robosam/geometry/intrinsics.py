"""Pinhole camera intrinsics, read from numbers, ROS ``CameraInfo`` dicts or RealSense-style JSON.

The per-pixel ray table (normalised image coordinates of every pixel, float32) is computed once per
intrinsics and cached, which is what makes deprojection a handful of vectorised multiplies.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from robosam.errors import InputError

# Distortion models accepted (ROS names, RealSense names and their aliases) -> canonical name.
_MODELS = {
    "none": "none",
    "": "none",
    "plumb_bob": "plumb_bob",
    "brown_conrady": "plumb_bob",
    "opencv": "plumb_bob",
    "rational_polynomial": "plumb_bob",
    "inverse_brown_conrady": "inverse_brown_conrady",
    "equidistant": "equidistant",
    "kannala_brandt4": "equidistant",
    "fisheye": "equidistant",
}
# librealsense's rs2_distortion enum values.
_REALSENSE_MODEL_IDS = {0: "none", 2: "inverse_brown_conrady", 4: "brown_conrady", 5: "kannala_brandt4"}


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of one image stream.

    fx, fy: focal lengths in pixels (> 0). cx, cy: principal point in pixels (x right, y down).
    width, height: image size in pixels. distortion: coefficients in OpenCV order
    ``(k1, k2, p1, p2[, k3[, k4, k5, k6]])`` for ``plumb_bob`` / ``brown_conrady``, RealSense's five for
    ``inverse_brown_conrady``, ``(k1, k2, k3, k4)`` for ``equidistant``; empty or all zero means none.
    Instances are immutable and hashable, so they key the cached ray tables.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion: tuple[float, ...] = ()
    distortion_model: str = "none"

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise InputError(f"intrinsics.{name}", "a positive, finite focal length in pixels", value)
        for name in ("cx", "cy"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise InputError(f"intrinsics.{name}", "a finite principal point coordinate in pixels", value)
        for name in ("width", "height"):
            value = getattr(self, name)
            if not _is_number(value) or int(value) != value or value <= 0:
                raise InputError(f"intrinsics.{name}", "a positive whole number of pixels", value)
        model = _MODELS.get(str(self.distortion_model).lower().removeprefix("distortion."))
        if model is None:
            raise InputError(
                "intrinsics.distortion_model",
                f"one of {sorted(k for k in _MODELS if k)}",
                self.distortion_model,
            )
        coeffs = tuple(float(c) for c in self.distortion)
        if not all(math.isfinite(c) for c in coeffs):
            raise InputError("intrinsics.distortion", "finite coefficients", self.distortion)
        if not any(coeffs):
            model, coeffs = "none", ()
        elif model == "none":
            model = "plumb_bob"
        if model == "plumb_bob" and len(coeffs) not in (4, 5, 8, 12, 14):
            raise InputError(
                "intrinsics.distortion", "4, 5, 8, 12 or 14 OpenCV coefficients", self.distortion
            )
        if model == "inverse_brown_conrady" and len(coeffs) != 5:
            raise InputError("intrinsics.distortion", "5 RealSense coefficients", self.distortion)
        if model == "equidistant" and len(coeffs) < 4:
            raise InputError("intrinsics.distortion", "4 equidistant coefficients (k1..k4)", self.distortion)
        for name, value in (
            ("fx", float(self.fx)),
            ("fy", float(self.fy)),
            ("cx", float(self.cx)),
            ("cy", float(self.cy)),
            ("width", int(self.width)),
            ("height", int(self.height)),
            ("distortion", coeffs if model != "equidistant" else coeffs[:4]),
            ("distortion_model", model),
        ):
            object.__setattr__(self, name, value)

    # ----------------------------------------------------------------- constructors

    @classmethod
    def from_matrix(
        cls, K: Any, width: int, height: int, distortion: Sequence[float] = (), distortion_model: str = "none"
    ) -> CameraIntrinsics:
        """From a 3x3 camera matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (or its 9 values row-major)."""
        matrix = np.asarray(K, dtype=np.float64)
        if matrix.size != 9:
            raise InputError("K", "a 3x3 camera matrix or its 9 values", K)
        matrix = matrix.reshape(3, 3)
        return cls(
            fx=matrix[0, 0],
            fy=matrix[1, 1],
            cx=matrix[0, 2],
            cy=matrix[1, 2],
            width=width,
            height=height,
            distortion=tuple(distortion),
            distortion_model=distortion_model,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CameraIntrinsics:
        """From any of the common dict layouts.

        - ROS ``sensor_msgs/CameraInfo`` (ROS 1 ``K``/``D`` or ROS 2 ``k``/``d``, ``width``, ``height``,
          ``distortion_model``);
        - ROS ``camera_calibration`` YAML (``image_width``, ``image_height``, ``camera_matrix.data``,
          ``distortion_coefficients.data``, ``distortion_model``);
        - RealSense ``rs2_intrinsics`` (``width``, ``height``, ``ppx``, ``ppy``, ``fx``, ``fy``, ``model``,
          ``coeffs``), also nested under an ``intrinsics`` key;
        - plain ``fx``, ``fy``, ``cx``, ``cy``, ``width``, ``height`` (+ ``distortion``).
        """
        if not isinstance(data, Mapping):
            raise InputError("intrinsics", "a dict of camera intrinsics", type(data).__name__)
        if "intrinsics" in data and isinstance(data["intrinsics"], Mapping):
            data = data["intrinsics"]
        try:
            if "camera_matrix" in data:
                matrix = data["camera_matrix"]
                values = matrix["data"] if isinstance(matrix, Mapping) else matrix
                dist = data.get("distortion_coefficients", ())
                dist = dist.get("data", ()) if isinstance(dist, Mapping) else dist
                return cls.from_matrix(
                    values,
                    width=data["image_width"],
                    height=data["image_height"],
                    distortion=tuple(dist or ()),
                    distortion_model=data.get("distortion_model", "plumb_bob"),
                )
            for k_key, d_key in (("K", "D"), ("k", "d")):
                if k_key in data:
                    return cls.from_matrix(
                        data[k_key],
                        width=data["width"],
                        height=data["height"],
                        distortion=tuple(data.get(d_key) or ()),
                        distortion_model=data.get("distortion_model", "plumb_bob"),
                    )
            if "ppx" in data:
                model = data.get("model", "none")
                if isinstance(model, int) and not isinstance(model, bool):
                    if model not in _REALSENSE_MODEL_IDS:
                        raise InputError("intrinsics.model", "a supported rs2_distortion value", model)
                    model = _REALSENSE_MODEL_IDS[model]
                return cls(
                    fx=data["fx"],
                    fy=data["fy"],
                    cx=data["ppx"],
                    cy=data["ppy"],
                    width=data["width"],
                    height=data["height"],
                    distortion=tuple(data.get("coeffs") or ()),
                    distortion_model=str(model),
                )
            return cls(
                fx=data["fx"],
                fy=data["fy"],
                cx=data["cx"],
                cy=data["cy"],
                width=data["width"],
                height=data["height"],
                distortion=tuple(data.get("distortion") or ()),
                distortion_model=str(data.get("distortion_model", "none")),
            )
        except KeyError as error:
            raise InputError(
                "intrinsics",
                "fx, fy, cx/ppx, cy/ppy, width and height (or a ROS CameraInfo K matrix)",
                sorted(data),
                detail=f"missing {error.args[0]!r}",
            ) from None
        except TypeError as error:
            raise InputError(
                "intrinsics", "numeric camera parameters", dict(data), detail=str(error)
            ) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> CameraIntrinsics:
        """From a JSON or YAML file holding any layout :meth:`from_dict` accepts."""
        path = Path(path)
        if not path.is_file():
            raise InputError("intrinsics", "an existing JSON or YAML intrinsics file", str(path))
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as error:  # noqa: BLE001 - any parse failure is the user's file
            raise InputError(
                "intrinsics", "a valid JSON or YAML file", str(path), detail=str(error)
            ) from None
        return cls.from_dict(data)

    # ----------------------------------------------------------------- use

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``: the shape a depth image for these intrinsics must have."""
        return (self.height, self.width)

    @property
    def K(self) -> np.ndarray:
        """The 3x3 float64 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain layout (``fx, fy, cx, cy, width, height, distortion, distortion_model``)."""
        return {
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
            "distortion": list(self.distortion),
            "distortion_model": self.distortion_model,
        }

    def scaled(self, factor: float) -> CameraIntrinsics:
        """Intrinsics of the same camera with the image resized by ``factor`` (pixel-centre convention)."""
        if not _is_number(factor) or not factor > 0:
            raise InputError("factor", "a positive scale factor", factor)
        return CameraIntrinsics(
            fx=self.fx * factor,
            fy=self.fy * factor,
            cx=(self.cx + 0.5) * factor - 0.5,
            cy=(self.cy + 0.5) * factor - 0.5,
            width=max(1, round(self.width * factor)),
            height=max(1, round(self.height * factor)),
            distortion=self.distortion,
            distortion_model=self.distortion_model,
        )

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Cached flat ray tables ``(ray_x, ray_y)``, each (H * W,) float32, read-only.

        A pixel (u, v) with z-depth ``z`` metres deprojects to ``(ray_x * z, ray_y * z, z)`` in the camera
        optical frame; with distortion the tables hold the undistorted normalised coordinates.
        """
        return _ray_tables(self)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points (N, 3) metres to pixels (N, 2) float64 ``(u, v)`` (pinhole, no distortion).

        Points at or behind the camera (z <= 0) give NaN.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        z = points[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(z > 0, self.fx * points[:, 0] / z + self.cx, np.nan)
            v = np.where(z > 0, self.fy * points[:, 1] / z + self.cy, np.nan)
        return np.stack([u, v], axis=1)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@lru_cache(maxsize=16)
def _ray_tables(intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    height, width = intrinsics.height, intrinsics.width
    u = np.arange(width, dtype=np.float64)
    v = np.arange(height, dtype=np.float64)
    if intrinsics.distortion_model == "none":
        ray_x = np.broadcast_to((u - intrinsics.cx) / intrinsics.fx, (height, width))
        ray_y = np.broadcast_to(((v - intrinsics.cy) / intrinsics.fy)[:, None], (height, width))
    else:
        uu, vv = np.meshgrid(u, v)
        ray_x, ray_y = _undistort(intrinsics, uu.ravel(), vv.ravel())
    ray_x = np.ascontiguousarray(ray_x, dtype=np.float32).reshape(-1)
    ray_y = np.ascontiguousarray(ray_y, dtype=np.float32).reshape(-1)
    ray_x.flags.writeable = False
    ray_y.flags.writeable = False
    return ray_x, ray_y


def _undistort(intrinsics: CameraIntrinsics, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distorted pixel coordinates (N,) to undistorted normalised image coordinates (N,), (N,)."""
    coeffs = np.asarray(intrinsics.distortion, dtype=np.float64)
    if intrinsics.distortion_model == "inverse_brown_conrady":
        # RealSense: the coefficients map distorted normalised coordinates straight to undistorted ones.
        x = (u - intrinsics.cx) / intrinsics.fx
        y = (v - intrinsics.cy) / intrinsics.fy
        k1, k2, p1, p2, k3 = coeffs
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        ux = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        uy = y * radial + 2 * p2 * x * y + p1 * (r2 + 2 * y * y)
        return ux, uy
    import cv2

    pixels = np.stack([u, v], axis=1).reshape(-1, 1, 2)
    if intrinsics.distortion_model == "equidistant":
        normalised = cv2.fisheye.undistortPoints(pixels, intrinsics.K, coeffs[:4])
    else:
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-9)
        if hasattr(cv2, "undistortPointsIter"):  # OpenCV 4.x
            normalised = cv2.undistortPointsIter(pixels, intrinsics.K, coeffs, None, None, criteria)
        else:  # OpenCV 5 takes the criteria in undistortPoints
            normalised = cv2.undistortPoints(pixels, intrinsics.K, coeffs, criteria=criteria)
    normalised = normalised.reshape(-1, 2)
    return normalised[:, 0], normalised[:, 1]
