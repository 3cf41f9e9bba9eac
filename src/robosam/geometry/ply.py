"""PLY point cloud files (ASCII or binary little-endian), written atomically, and read back."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robosam.errors import InputError
from robosam.geometry.outliers import as_points
from robosam.geometry.types import PointCloud
from robosam.io import atomic_write


def write_ply(
    path: str | os.PathLike,
    points: PointCloud | np.ndarray,
    colors: np.ndarray | None = None,
    *,
    binary: bool = True,
) -> Path:
    """Write points (N, 3) metres as float32 x, y, z (+ uchar red, green, blue) vertices.

    points: a PointCloud (its colours are used unless ``colors`` is given) or an (N, 3) array.
    colors: optional (N, 3) uint8 RGB. binary: binary little-endian (default) or ASCII.
    The file is written to a temporary name in the same folder and renamed, so readers never see half of it.
    """
    xyz = as_points(points).astype(np.float32)
    if colors is None and isinstance(points, PointCloud):
        colors = points.colors
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != xyz.shape:
            raise InputError("colors", f"an ({xyz.shape[0]}, 3) uint8 array like the points", colors)
        colors = colors.astype(np.uint8)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertices = np.empty(xyz.shape[0], dtype=fields)
    vertices["x"], vertices["y"], vertices["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if colors is not None:
        vertices["red"], vertices["green"], vertices["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    header = [
        "ply",
        f"format {'binary_little_endian' if binary else 'ascii'} 1.0",
        "comment written by robosam",
        f"element vertex {xyz.shape[0]}",
        "property float x",
        "property float y",
        "property float z",
    ]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as file:
        file.write(("\n".join(header) + "\n").encode("ascii"))
        if binary:
            file.write(vertices.tobytes())
        else:
            table = xyz.astype(np.float64)
            formats = ["%.7g"] * 3
            if colors is not None:
                table = np.hstack([table, colors.astype(np.float64)])
                formats += ["%d"] * 3
            np.savetxt(file, table, fmt=formats)
    return path


def read_ply(path: str | os.PathLike) -> PointCloud:
    """Read a vertex-only PLY with float x, y, z and optional uchar red, green, blue (as ``write_ply`` writes).

    Returns a PointCloud (points float32 (N, 3), colors uint8 (N, 3) or None).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("path", "an existing PLY file", str(path))
    data = path.read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply") or end < 0:
        raise InputError("path", "a PLY file (starting 'ply', with 'end_header')", str(path))
    lines = data[:end].decode("ascii").splitlines()
    body = data[end + len(b"end_header\n") :]
    fmt, count, names, types = "", 0, [], []
    kinds = {"float": "<f4", "float32": "<f4", "double": "<f8", "uchar": "u1", "uint8": "u1", "int": "<i4"}
    for line in lines:
        words = line.split()
        if words[:1] == ["format"]:
            fmt = words[1]
        elif words[:2] == ["element", "vertex"]:
            count = int(words[2])
        elif words[:1] == ["element"]:
            raise InputError("path", "a PLY with vertices only", str(path), detail=f"found {line!r}")
        elif words[:1] == ["property"]:
            if words[1] not in kinds:
                raise InputError("path", f"PLY properties of types {sorted(kinds)}", line)
            names.append(words[2])
            types.append(kinds[words[1]])
    if fmt == "binary_little_endian":
        vertices = np.frombuffer(body, dtype=list(zip(names, types)), count=count)
        columns = {name: vertices[name] for name in names}
    elif fmt == "ascii":
        table = np.loadtxt(body.decode("ascii").splitlines(), ndmin=2) if count else np.zeros((0, len(names)))
        columns = {name: table[:, i] for i, name in enumerate(names)}
    else:
        raise InputError("path", "an ascii or binary_little_endian PLY", fmt)
    points = np.stack([columns["x"], columns["y"], columns["z"]], axis=1).astype(np.float32)
    colors = None
    if {"red", "green", "blue"} <= columns.keys():
        colors = np.stack([columns["red"], columns["green"], columns["blue"]], axis=1).astype(np.uint8)
    return PointCloud(points=points, colors=colors)
