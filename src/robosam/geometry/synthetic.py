"""Synthetic RGB-D scenes with exact ground truth: boxes, cylinders and spheres on a table, ray cast in numpy.

World frame: the table is the plane z = 0, z up, objects rest on it. The camera looks at ``look_at`` from
``camera_position``; everything returned (depth, ground-truth poses, table plane) is in its optical frame
(x right, y down, z forward). Depth is z-depth in metres (float32, 0 = no return), like a registered
RGB-D sensor's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from robosam.errors import InputError
from robosam.geometry.intrinsics import CameraIntrinsics
from robosam.geometry.types import ObjectPose, Plane


@dataclass
class Box:
    """A box resting on the table. size: (x, y, z) metres in its own frame (z up); position: (x, y) of its
    centre on the table; yaw: rotation about the table normal in radians; color: RGB 0..255."""

    size: tuple[float, float, float]
    position: tuple[float, float] = (0.0, 0.0)
    yaw: float = 0.0
    color: tuple[int, int, int] = (200, 60, 50)


@dataclass
class Cylinder:
    """A cylinder on the table, standing (axis up) or lying (axis horizontal along ``yaw``)."""

    radius: float
    height: float
    position: tuple[float, float] = (0.0, 0.0)
    yaw: float = 0.0
    lying: bool = False
    color: tuple[int, int, int] = (50, 120, 200)


@dataclass
class Sphere:
    """A sphere resting on the table."""

    radius: float
    position: tuple[float, float] = (0.0, 0.0)
    color: tuple[int, int, int] = (60, 170, 80)


Shape = Box | Cylinder | Sphere


@dataclass
class SyntheticScene:
    """One rendered view.

    rgb: (H, W, 3) uint8. depth: (H, W) float32 z-depth metres, 0 where there is no return (holes, sky).
    masks: (N, H, W) bool visible pixels of each object, in ``objects`` order. intrinsics: the camera.
    poses: ground-truth ObjectPose per object in the camera frame (center = true centre of the solid,
        rotation columns = the shape's own axes, extents = its full size along them).
    table: the table plane in the camera frame (normal up, towards the camera).
    camera_to_world: (4, 4) float64 camera optical frame -> table frame.
    """

    rgb: np.ndarray
    depth: np.ndarray
    masks: np.ndarray
    intrinsics: CameraIntrinsics
    objects: list[Shape]
    poses: list[ObjectPose]
    table: Plane
    camera_to_world: np.ndarray = field(repr=False)

    def depth_mm(self) -> np.ndarray:
        """(H, W) uint16 depth in millimetres (0 = no return), the usual 16-bit PNG depth format."""
        return np.clip(np.round(self.depth * 1000.0), 0, 65535).astype(np.uint16)


def default_intrinsics(width: int = 640, height: int = 480, fov_x_deg: float = 69.0) -> CameraIntrinsics:
    """A RealSense-like pinhole camera: principal point at the image centre, square pixels."""
    fx = (width / 2) / math.tan(math.radians(fov_x_deg) / 2)
    return CameraIntrinsics(fx=fx, fy=fx, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)


def look_at(camera_position: tuple[float, float, float], target: tuple[float, float, float]) -> np.ndarray:
    """(4, 4) camera optical frame -> world transform for a camera at ``camera_position`` facing ``target``
    with the image's "up" towards world +z."""
    position = np.asarray(camera_position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - position
    if np.linalg.norm(forward) == 0:
        raise InputError("look_at", "a target different from the camera position", target)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-9:  # looking straight down or up: pick image right = world x
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    matrix = np.eye(4)
    matrix[:3, :3] = np.stack([right, down, forward], axis=1)
    matrix[:3, 3] = position
    return matrix


def render_scene(
    objects: list[Shape],
    intrinsics: CameraIntrinsics | None = None,
    *,
    camera_position: tuple[float, float, float] = (0.0, -0.45, 0.55),
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
    depth_noise: float = 0.0,
    hole_fraction: float = 0.0,
    max_range: float = 4.0,
    seed: int = 0,
) -> SyntheticScene:
    """Ray cast ``objects`` on an infinite table plane (z = 0) seen by a pinhole camera.

    depth_noise: standard deviation in metres of Gaussian noise added to every valid depth pixel.
    hole_fraction: fraction of valid depth pixels set to 0 (no return) at random.
    max_range: rays hitting nothing nearer than this get depth 0. seed: RNG seed for noise and holes.
    """
    intrinsics = intrinsics or default_intrinsics()
    if not 0.0 <= hole_fraction < 1.0:
        raise InputError("hole_fraction", "a fraction in [0, 1)", hole_fraction)
    if not depth_noise >= 0.0:
        raise InputError("depth_noise", "a standard deviation >= 0 in metres", depth_noise)
    camera_to_world = look_at(camera_position, target)
    rotation, origin = camera_to_world[:3, :3], camera_to_world[:3, 3]
    if origin[2] <= 0:
        raise InputError("camera_position", "a camera above the table (z > 0)", camera_position)
    ray_x, ray_y = intrinsics.rays()
    rays_cam = np.stack([ray_x, ray_y, np.ones_like(ray_x)], axis=1).astype(np.float64)
    rays = rays_cam @ rotation.T  # world directions whose parameter t is the z-depth

    n_pixels = rays.shape[0]
    best_t = np.full(n_pixels, np.inf)
    best_id = np.full(n_pixels, -1, dtype=np.int64)
    normals = np.zeros((n_pixels, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        table_t = np.where(rays[:, 2] < 0, -origin[2] / rays[:, 2], np.inf)
    hit = table_t < best_t
    best_t[hit], best_id[hit], normals[hit] = table_t[hit], len(objects), (0.0, 0.0, 1.0)

    poses = []
    for index, shape in enumerate(objects):
        shape_rotation, centre, half, kind = _shape_frame(shape)
        rows = _rays_near(origin, rays, centre, float(np.linalg.norm(half)))
        local_origin = (origin - centre) @ shape_rotation
        t, local_normal = _INTERSECT[kind](local_origin, rays[rows] @ shape_rotation, half)
        hit = t < best_t[rows]
        rows = rows[hit]
        best_t[rows], best_id[rows] = t[hit], index
        normals[rows] = local_normal[hit] @ shape_rotation.T
        poses.append(_ground_truth(shape_rotation, centre, 2 * half, camera_to_world))

    valid = np.isfinite(best_t) & (best_t < max_range)
    depth = np.where(valid, best_t, 0.0)
    points = origin + rays * np.where(valid, best_t, 0.0)[:, None]
    rgb = _shade(objects, best_id, normals, points, valid)

    rng = np.random.default_rng(seed)
    if depth_noise > 0:
        depth = np.where(valid, depth + rng.normal(0.0, depth_noise, n_pixels), 0.0)
        depth = np.where(depth > 0, depth, 0.0)
    if hole_fraction > 0:
        depth = np.where(rng.random(n_pixels) < hole_fraction, 0.0, depth)

    shape = intrinsics.shape
    masks = (
        np.stack([(best_id == i).reshape(shape) for i in range(len(objects))])
        if objects
        else np.zeros((0, *shape), dtype=bool)
    )
    world_to_camera = np.linalg.inv(camera_to_world)
    normal = world_to_camera[:3, :3] @ np.array([0.0, 0.0, 1.0])
    table = Plane(normal=normal, offset=float(-normal @ world_to_camera[:3, 3]))
    return SyntheticScene(
        rgb=rgb.reshape(*shape, 3),
        depth=depth.reshape(shape).astype(np.float32),
        masks=masks,
        intrinsics=intrinsics,
        objects=list(objects),
        poses=poses,
        table=table,
        camera_to_world=camera_to_world,
    )


def demo_scene(**kwargs) -> SyntheticScene:
    """A box, a standing cylinder and a sphere on a table (keyword arguments go to :func:`render_scene`)."""
    objects: list[Shape] = [
        Box(size=(0.16, 0.05, 0.07), position=(0.0, 0.02), yaw=math.radians(30)),
        Cylinder(radius=0.03, height=0.12, position=(0.17, 0.08)),
        Sphere(radius=0.035, position=(-0.16, 0.06)),
    ]
    return render_scene(objects, **kwargs)


def _rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _shape_frame(shape: Shape) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(rotation (3, 3) shape -> world, centre (3,), half sizes (3,), kind) of one shape."""
    if isinstance(shape, Box):
        size = np.asarray(shape.size, dtype=np.float64)
        if size.shape != (3,) or not (size > 0).all():
            raise InputError("Box.size", "three positive lengths in metres", shape.size)
        centre = np.array([*shape.position, size[2] / 2])
        return _rotation_z(shape.yaw), centre, size / 2, "box"
    if isinstance(shape, Cylinder):
        if not (shape.radius > 0 and shape.height > 0):
            raise InputError("Cylinder", "a positive radius and height", (shape.radius, shape.height))
        half = np.array([shape.radius, shape.radius, shape.height / 2])
        if shape.lying:  # local z (the axis) along the yaw direction, local x up
            rotation = _rotation_z(shape.yaw) @ np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
            rotation[:, 1] = np.cross(rotation[:, 2], rotation[:, 0])
            return rotation, np.array([*shape.position, shape.radius]), half, "cylinder"
        return _rotation_z(shape.yaw), np.array([*shape.position, shape.height / 2]), half, "cylinder"
    if isinstance(shape, Sphere):
        if not shape.radius > 0:
            raise InputError("Sphere.radius", "a positive radius in metres", shape.radius)
        return np.eye(3), np.array([*shape.position, shape.radius]), np.full(3, shape.radius), "sphere"
    raise InputError("objects", "Box, Cylinder or Sphere shapes", type(shape).__name__)


def _rays_near(origin: np.ndarray, rays: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Indices of the rays passing within ``radius`` of ``centre`` (a bounding-sphere cull)."""
    offset = centre - origin
    along = rays @ offset
    squared = np.einsum("ij,ij->i", rays, rays)
    miss = offset @ offset - along**2 / squared
    return np.flatnonzero((miss <= radius**2 * 1.0001) & (along > 0))


def _intersect_box(origin: np.ndarray, rays: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - origin) / rays
        t2 = (half - origin) / rays
    t_near_axes = np.fmin(t1, t2)
    t_near = np.nanmax(np.where(np.isnan(t_near_axes), -np.inf, t_near_axes), axis=1)
    t_far = np.nanmin(np.where(np.isnan(t_near_axes), np.inf, np.fmax(t1, t2)), axis=1)
    hit = (t_near <= t_far) & (t_near > 0)
    axis = np.argmax(np.where(np.isnan(t_near_axes), -np.inf, t_near_axes), axis=1)
    normal = np.zeros_like(rays)
    rows = np.arange(rays.shape[0])
    normal[rows, axis] = -np.sign(rays[rows, axis])
    return np.where(hit, t_near, np.inf), normal


def _intersect_sphere(
    origin: np.ndarray, rays: np.ndarray, half: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    radius = half[0]
    a = np.einsum("ij,ij->i", rays, rays)
    b = 2 * rays @ origin
    c = origin @ origin - radius**2
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
    t = np.where((disc >= 0) & (t > 0), t, np.inf)
    normal = (origin + rays * np.where(np.isfinite(t), t, 0.0)[:, None]) / radius
    return t, normal


def _intersect_cylinder(
    origin: np.ndarray, rays: np.ndarray, half: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    radius, half_height = half[0], half[2]
    a = rays[:, 0] ** 2 + rays[:, 1] ** 2
    b = 2 * (origin[0] * rays[:, 0] + origin[1] * rays[:, 1])
    c = origin[0] ** 2 + origin[1] ** 2 - radius**2
    disc = b * b - 4 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(disc)) / (2 * a)
        side_z = origin[2] + t_side * rays[:, 2]
        t_side = np.where(
            (disc >= 0) & (a > 0) & (t_side > 0) & (np.abs(side_z) <= half_height), t_side, np.inf
        )
        t_cap = np.fmin((half_height - origin[2]) / rays[:, 2], (-half_height - origin[2]) / rays[:, 2])
        cap_x = origin[0] + t_cap * rays[:, 0]
        cap_y = origin[1] + t_cap * rays[:, 1]
        t_cap = np.where((t_cap > 0) & (cap_x**2 + cap_y**2 <= radius**2), t_cap, np.inf)
    t = np.fmin(t_side, t_cap)
    point = origin + rays * np.where(np.isfinite(t), t, 0.0)[:, None]
    normal = np.where(
        (t_cap <= t_side)[:, None],
        np.stack([np.zeros_like(t), np.zeros_like(t), np.sign(point[:, 2])], axis=1),
        np.stack([point[:, 0] / radius, point[:, 1] / radius, np.zeros_like(t)], axis=1),
    )
    return t, normal


_INTERSECT = {"box": _intersect_box, "sphere": _intersect_sphere, "cylinder": _intersect_cylinder}


def _ground_truth(
    rotation: np.ndarray, centre: np.ndarray, size: np.ndarray, camera_to_world: np.ndarray
) -> ObjectPose:
    world_to_camera = np.linalg.inv(camera_to_world)
    centre_cam = world_to_camera[:3, :3] @ centre + world_to_camera[:3, 3]
    return ObjectPose(
        center=centre_cam,
        rotation=world_to_camera[:3, :3] @ rotation,
        extents=size.copy(),
        centroid=centre_cam,
        n_points=0,
        upright=True,
    )


def _shade(
    objects: list[Shape], ids: np.ndarray, normals: np.ndarray, points: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """(P, 3) uint8 Lambert-shaded colours; the table is a grey 5 cm checkerboard, misses are sky blue."""
    palette = np.array([shape.color for shape in objects] + [(0, 0, 0)], dtype=np.float64).reshape(-1, 3)
    base = palette[np.clip(ids, 0, len(objects))]
    table = ids == len(objects)
    checker = (np.floor(points[:, 0] / 0.05) + np.floor(points[:, 1] / 0.05)) % 2
    base[table] = np.where(checker[table, None] > 0, 170.0, 140.0)
    light = np.array([0.3, -0.5, 1.0]) / np.linalg.norm([0.3, -0.5, 1.0])
    shade = 0.35 + 0.65 * np.clip(normals @ light, 0.0, 1.0)
    rgb = base * shade[:, None]
    rgb[~valid] = (135, 190, 235)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
