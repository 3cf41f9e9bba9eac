"""robosam.geometry: intrinsics, deprojection, outliers, planes, poses, grasps, scenes, PLY and depth files.

Accuracy is measured against synthetic RGB-D scenes ray cast with exact ground truth.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from robosam.errors import InputError
from robosam.geometry import (
    CameraIntrinsics,
    Grasp,
    ObjectPose,
    Plane,
    PointCloud,
    fit_plane,
    grasp_candidates,
    grasp_from_mask,
    load_depth,
    mask_to_points,
    object_pose,
    outlier_mask,
    read_ply,
    remove_outliers,
    scene_summary,
    write_depth_png,
    write_ply,
)
from robosam.geometry.grasp import Gripper, gripper_corners
from robosam.geometry.synthetic import Box, Cylinder, Sphere, demo_scene, render_scene

SMALL = CameraIntrinsics(fx=100.0, fy=120.0, cx=2.0, cy=1.5, width=5, height=4)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two axes, ignoring sign."""
    cosine = abs(float(a @ b)) / (np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(min(1.0, cosine)))


def loop_deproject(mask, depth, intrinsics, depth_scale):
    """Independent per-pixel reference (float64)."""
    points = []
    for v in range(depth.shape[0]):
        for u in range(depth.shape[1]):
            z = float(depth[v, u]) * depth_scale
            if mask[v, u] and math.isfinite(z) and z > 0:
                points.append(
                    ((u - intrinsics.cx) * z / intrinsics.fx, (v - intrinsics.cy) * z / intrinsics.fy, z)
                )
    return np.array(points).reshape(-1, 3)


# ---------------------------------------------------------------------------------------------- intrinsics


def test_intrinsics_from_every_layout_agree(tmp_path):
    expected = (600.0, 610.0, 320.5, 240.5, 640, 480)
    layouts = [
        {"fx": 600, "fy": 610, "cx": 320.5, "cy": 240.5, "width": 640, "height": 480},
        {"K": [600, 0, 320.5, 0, 610, 240.5, 0, 0, 1], "D": [0, 0, 0, 0, 0], "width": 640, "height": 480,
         "distortion_model": "plumb_bob"},
        {"k": [[600, 0, 320.5], [0, 610, 240.5], [0, 0, 1]], "d": [], "width": 640, "height": 480},
        {"width": 640, "height": 480, "ppx": 320.5, "ppy": 240.5, "fx": 600, "fy": 610,
         "model": "distortion.inverse_brown_conrady", "coeffs": [0, 0, 0, 0, 0]},
        {"intrinsics": {"width": 640, "height": 480, "ppx": 320.5, "ppy": 240.5, "fx": 600, "fy": 610, "model": 2}},
    ]  # fmt: skip
    for layout in layouts:
        intrinsics = CameraIntrinsics.from_dict(layout)
        assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == expected[:4]
        assert intrinsics.shape == (480, 640)
        assert intrinsics.distortion_model == "none"  # all-zero coefficients mean no distortion
    (tmp_path / "rs.json").write_text(json.dumps(layouts[3]))
    assert CameraIntrinsics.from_file(tmp_path / "rs.json") == CameraIntrinsics.from_dict(layouts[0])
    (tmp_path / "ros.yaml").write_text(
        "image_width: 640\nimage_height: 480\ncamera_matrix:\n  rows: 3\n  cols: 3\n"
        "  data: [600, 0, 320.5, 0, 610, 240.5, 0, 0, 1]\ndistortion_model: plumb_bob\n"
        "distortion_coefficients:\n  rows: 1\n  cols: 5\n  data: [0.1, -0.05, 0.001, 0.002, 0.0]\n"
    )
    ros = CameraIntrinsics.from_file(tmp_path / "ros.yaml")
    assert ros.distortion == (0.1, -0.05, 0.001, 0.002, 0.0) and ros.distortion_model == "plumb_bob"
    assert CameraIntrinsics.from_dict(ros.to_dict()) == ros


@pytest.mark.parametrize(
    ("values", "argument"),
    [
        ({"fx": 0.0}, "intrinsics.fx"),
        ({"fy": -5.0}, "intrinsics.fy"),
        ({"fx": float("nan")}, "intrinsics.fx"),
        ({"cx": float("inf")}, "intrinsics.cx"),
        ({"width": 0}, "intrinsics.width"),
        ({"height": 2.5}, "intrinsics.height"),
        ({"distortion": (0.1, 0.2)}, "intrinsics.distortion"),
        ({"distortion": (0.1,) * 5, "distortion_model": "mystery"}, "intrinsics.distortion_model"),
    ],
)
def test_bad_intrinsics_raise_naming_the_field(values, argument):
    fields = {"fx": 500.0, "fy": 500.0, "cx": 10.0, "cy": 10.0, "width": 20, "height": 20, **values}
    with pytest.raises(InputError, match=f"^{argument}: expected"):
        CameraIntrinsics(**fields)


def test_bad_intrinsics_files_and_dicts(tmp_path):
    with pytest.raises(InputError, match="missing 'fy'"):
        CameraIntrinsics.from_dict({"fx": 1, "cx": 1, "cy": 1, "width": 2, "height": 2})
    with pytest.raises(InputError, match="an existing JSON or YAML"):
        CameraIntrinsics.from_file(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{fx: ")
    with pytest.raises(InputError, match="a valid JSON or YAML file"):
        CameraIntrinsics.from_file(tmp_path / "broken.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="a dict of camera intrinsics"):
        CameraIntrinsics.from_file(tmp_path / "list.json")


def test_ray_tables_are_cached_float32_and_read_only():
    a = CameraIntrinsics(fx=500.0, fy=500.0, cx=31.5, cy=23.5, width=64, height=48)
    b = CameraIntrinsics(fx=500.0, fy=500.0, cx=31.5, cy=23.5, width=64, height=48)
    ray_x, ray_y = a.rays()
    assert ray_x is b.rays()[0] and ray_y is a.rays()[1]  # equal intrinsics share one table
    assert ray_x.dtype == np.float32 and ray_x.shape == (64 * 48,)
    assert not ray_x.flags.writeable
    assert ray_x[5] == pytest.approx((5 - 31.5) / 500.0) and ray_y[64 * 7] == pytest.approx(
        (7 - 23.5) / 500.0
    )


@pytest.mark.parametrize("coeffs", [(-0.2, 0.05, 0.001, -0.002, 0.01), (0.1, -0.02, 0.0005, 0.001)])
def test_distorted_rays_reproject_to_their_pixels(coeffs):
    intrinsics = CameraIntrinsics(
        fx=300.0,
        fy=310.0,
        cx=80.0,
        cy=60.0,
        width=160,
        height=120,
        distortion=coeffs,
        distortion_model="plumb_bob",
    )
    ray_x, ray_y = intrinsics.rays()
    rays = np.stack([ray_x, ray_y, np.ones_like(ray_x)], axis=1).astype(np.float64)
    pixels, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), intrinsics.K, np.asarray(coeffs))
    v, u = np.divmod(np.arange(rays.shape[0]), intrinsics.width)
    assert np.abs(pixels.reshape(-1, 2) - np.stack([u, v], axis=1)).max() < 0.01


def test_project_inverts_deprojection_and_scaled_keeps_the_geometry():
    intrinsics = CameraIntrinsics(fx=400.0, fy=420.0, cx=49.5, cy=39.5, width=100, height=80)
    depth = np.full((80, 100), 0.8, dtype=np.float32)
    cloud = mask_to_points(np.ones((80, 100), bool), depth, intrinsics)
    assert np.abs(intrinsics.project(cloud.points) - cloud.pixels).max() < 1e-3
    half = intrinsics.scaled(0.5)
    assert half.shape == (40, 50)
    # the same 3D point lands at half the pixel coordinates (pixel-centre convention)
    uv = intrinsics.project(np.array([[0.1, -0.05, 1.0]]))[0]
    assert np.allclose(half.project(np.array([[0.1, -0.05, 1.0]]))[0], (uv + 0.5) * 0.5 - 0.5)


# ---------------------------------------------------------------------------------------------- deprojection


def test_mask_to_points_known_values_and_dropped_depth():
    depth = np.array(
        [
            [1.0, 0.0, np.nan, 2.0, -1.0],
            [np.inf, 1.5, 1.5, 1.5, 3.0],
            [0.5, 0.5, 0.5, 0.5, 0.5],
            [9.0, 1.0, 1.0, 1.0, 1.0],
        ],
        dtype=np.float32,
    )
    mask = np.ones((4, 5), dtype=bool)
    mask[2, :2] = False
    cloud = mask_to_points(mask, depth, SMALL, z_range=(0.4, 5.0))
    assert np.isfinite(cloud.points).all()
    # kept: row 0 -> 2 (1.0, 2.0); row 1 -> 4 (not inf); row 2 -> 3 (mask); row 3 -> 4 (not 9.0)
    assert len(cloud) == 13
    assert cloud.points[:, 2].min() > 0.4 and cloud.points[:, 2].max() < 5.0
    first = cloud.points[0]  # pixel (u=0, v=0), z = 1
    assert np.allclose(first, [(0 - 2.0) / 100.0, (0 - 1.5) / 120.0, 1.0])
    u, v = cloud.pixels.T
    assert np.allclose(cloud.points[:, 2], depth[v, u])


def test_integer_depth_with_scale_equals_metric_depth_and_colours_follow_pixels():
    rng = np.random.default_rng(3)
    depth_mm = rng.integers(0, 3000, size=(4, 5)).astype(np.uint16)
    mask = rng.random((4, 5)) > 0.3
    mask[0, 0], depth_mm[0, 0] = True, 1234
    rgb = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    in_mm = mask_to_points(mask, depth_mm, SMALL, depth_scale=0.001, rgb=rgb)
    in_m = mask_to_points(mask, depth_mm.astype(np.float64) / 1000.0, SMALL)
    assert np.allclose(in_mm.points, in_m.points, atol=1e-6)
    u, v = in_mm.pixels.T
    assert (in_mm.colors == rgb[v, u]).all()
    near = mask_to_points(mask, depth_mm, SMALL, depth_scale=0.001, z_range=(0.0, 1.5))
    assert near.points[:, 2].max() < 1.5 and len(near) == int(
        ((depth_mm > 0) & (depth_mm < 1500) & mask).sum()
    )


def test_depth_units_follow_rep_118_without_a_scale(box_scene):
    """Integer depth is millimetres and float depth metres when no depth_scale is given, everywhere depth
    enters: a uint16 image never comes out 1000x too large."""
    depth_m = box_scene.depth.astype(np.float32)
    depth_mm = np.round(np.nan_to_num(depth_m) * 1000).astype(np.uint16)
    mask, camera = box_scene.masks[0], box_scene.intrinsics
    in_mm, in_m = mask_to_points(mask, depth_mm, camera), mask_to_points(mask, depth_m, camera)
    assert len(in_mm) == len(in_m)
    assert np.abs(in_mm.points - in_m.points).max() < 0.0006  # the rounding to whole millimetres
    grasped_mm = grasp_from_mask(mask, depth_mm, camera, clean=False)
    grasped_m = grasp_from_mask(mask, depth_m, camera, clean=False)
    assert np.linalg.norm(grasped_mm.pose.center - grasped_m.pose.center) < 0.002
    assert 0.2 < grasped_mm.pose.center[2] < 2.0  # metres, as the scene was rendered
    summary_mm = scene_summary(mask[None], depth_mm, camera)
    summary_m = scene_summary(mask[None], depth_m, camera)
    assert summary_mm.segments[0].distance == pytest.approx(summary_m.segments[0].distance, abs=0.002)
    with pytest.raises(InputError, match="^depth_scale:"):
        mask_to_points(mask, depth_mm, camera, depth_scale=True)


@settings(max_examples=40, deadline=None)
@given(
    depth=arrays(np.float32, (4, 5), elements=st.floats(-1.0, 4.0, width=32) | st.just(np.nan)),
    mask=arrays(np.bool_, (4, 5)),
    scale=st.sampled_from([1.0, 0.5, 0.001]),
)
def test_mask_to_points_matches_the_per_pixel_loop(depth, mask, scale):
    expected = loop_deproject(mask, depth, SMALL, scale)
    if expected.shape[0] == 0:
        with pytest.raises(InputError, match="^mask: expected a"):
            mask_to_points(mask, depth, SMALL, depth_scale=scale)
        return
    cloud = mask_to_points(mask, depth, SMALL, depth_scale=scale)
    assert cloud.points.dtype == np.float32
    assert np.allclose(cloud.points, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"mask": np.ones((4, 6), bool)}, r"^mask: expected shape \(4, 5\)"),
        ({"depth": np.ones((5, 5), np.float32)}, r"^depth: expected shape \(4, 5\)"),
        ({"depth": np.ones((4, 5, 3), np.float32)}, "^depth: expected a 2D"),
        ({"depth": np.ones((4, 5), bool)}, "^depth: expected a 2D integer or float"),
        ({"depth": [[1.0] * 5] * 4}, "^depth: expected a numpy array"),
        ({"mask": np.zeros((4, 5), bool)}, "^mask: expected a non-empty mask"),
        (
            {"depth": np.zeros((4, 5), np.float32)},
            "^mask: expected a mask with at least one pixel of valid depth",
        ),
        ({"depth": np.full((4, 5), np.nan, np.float32)}, "^mask: expected a mask with at least one pixel"),
        ({"depth_scale": 0.0}, "^depth_scale: expected a positive"),
        ({"depth_scale": float("nan")}, "^depth_scale: expected a positive"),
        ({"z_range": (2.0, 1.0)}, "^z_range: expected"),
        ({"z_range": (-1.0, 1.0)}, "^z_range: expected"),
        ({"z_range": 3.0}, r"^z_range: expected \(near, far\)"),
        ({"intrinsics": {"fx": 1}}, "^intrinsics: expected a CameraIntrinsics"),
        ({"rgb": np.zeros((3, 5, 3), np.uint8)}, "^rgb: expected an image of 5x4"),
    ],
)
def test_mask_to_points_bad_input(kwargs, pattern):
    arguments = {
        "mask": np.ones((4, 5), bool),
        "depth": np.ones((4, 5), np.float32),
        "intrinsics": SMALL,
        **kwargs,
    }
    with pytest.raises(InputError, match=pattern):
        mask_to_points(**arguments)


# ---------------------------------------------------------------------------------------------- outliers, planes


def test_outlier_removal_drops_far_points_and_keeps_the_cluster():
    rng = np.random.default_rng(0)
    cluster = rng.normal(0.0, 0.01, size=(2000, 3)) + (0.0, 0.0, 1.0)
    strays = rng.uniform(-0.5, 0.5, size=(20, 3)) + (0.0, 0.0, 1.5)
    points = np.vstack([cluster, strays])
    for method in ("statistical", "radius"):
        keep = outlier_mask(points, method, radius=0.01, min_neighbors=5)
        assert keep[:2000].mean() > 0.95
        assert keep[2000:].sum() <= 1
    cloud = PointCloud(points=points.astype(np.float32), valid=np.ones((1, 2020), bool))
    cleaned = remove_outliers(cloud)
    assert isinstance(cleaned, PointCloud) and cleaned.valid.sum() == len(cleaned) < 2020
    with pytest.raises(InputError, match="^method:"):
        remove_outliers(points, "median")
    with pytest.raises(InputError, match="^points: expected a PointCloud or an"):
        remove_outliers(np.ones((5, 2)))


def test_fit_plane_finds_the_plane_among_outliers_and_faces_the_camera():
    rng = np.random.default_rng(1)
    normal = np.array([0.0, -0.6, -0.8])  # a table seen from above, normal towards the camera
    basis = np.linalg.svd(normal[None])[2][1:]
    on_plane = rng.uniform(-0.5, 0.5, size=(3000, 2)) @ basis - 0.7 * normal  # 0.7 m from the camera
    on_plane += rng.normal(0, 0.001, size=(3000, 1)) * normal
    clutter = rng.uniform(-0.5, 0.5, size=(1500, 3)) + (0, 0, 0.7)
    plane = fit_plane(np.vstack([on_plane, clutter]), 0.005)
    assert angle_deg(plane.normal, normal) < 0.5
    assert plane.normal @ normal > 0 and plane.offset > 0  # the camera origin is on the normal's side
    assert abs(plane.distance(np.zeros((1, 3)))[0] - 0.7) < 0.002
    assert plane.inliers[:3000].mean() > 0.95 and plane.rmse < 0.002
    moved = np.eye(4)
    moved[:3, :3] = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix()
    moved[:3, 3] = (0.1, 0.2, 0.3)
    other = plane.transformed(moved)
    point = plane.project(np.array([[0.0, 0.0, 1.0]]))
    assert abs(other.distance(point @ moved[:3, :3].T + moved[:3, 3])[0]) < 1e-9


def test_fit_plane_bad_input():
    with pytest.raises(InputError, match="at least 3 points"):
        fit_plane(np.zeros((2, 3)))
    line = np.outer(np.linspace(0, 1, 50), [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="span a plane"):
        fit_plane(line)
    with pytest.raises(InputError, match="^points: expected finite"):
        fit_plane(np.full((5, 3), np.nan))


# ---------------------------------------------------------------------------------------------- poses


def test_pca_pose_of_a_solid_box_recovers_axes_extents_and_centre():
    rng = np.random.default_rng(2)
    size = np.array([0.20, 0.08, 0.03])
    rotation = Rotation.from_euler("zyx", [35, -20, 10], degrees=True).as_matrix()
    centre = np.array([0.05, -0.02, 0.9])
    points = (rng.uniform(-0.5, 0.5, size=(20000, 3)) * size) @ rotation.T + centre
    pose = object_pose(points)
    for axis in range(3):
        assert angle_deg(pose.rotation[:, axis], rotation[:, axis]) < 1.0
    assert np.abs(pose.extents - size).max() < 0.002
    assert np.linalg.norm(pose.center - centre) < 0.002
    assert np.allclose(pose.rotation.T @ pose.rotation, np.eye(3)) and np.linalg.det(pose.rotation) > 0
    assert np.allclose(Rotation.from_quat(pose.quaternion).as_matrix(), pose.rotation)  # (x, y, z, w)
    corners = pose.corners()
    assert np.allclose(np.ptp((corners - pose.center) @ pose.rotation, axis=0), pose.extents)
    with pytest.raises(InputError, match="at least 3 points"):
        object_pose(points[:2])
    with pytest.raises(InputError, match="^support: expected a Plane"):
        object_pose(points, support="table")


BOXES = [
    Box(size=(0.16, 0.05, 0.07), position=(0.0, 0.02), yaw=math.radians(30)),
    Box(size=(0.12, 0.04, 0.03), position=(0.05, -0.03), yaw=math.radians(-65)),
    Box(size=(0.20, 0.06, 0.09), position=(-0.06, 0.05), yaw=math.radians(95)),
]


@pytest.fixture(scope="module", params=range(len(BOXES)), ids=["box30", "box-65", "box95"])
def box_scene(request):
    return render_scene([BOXES[request.param]])


@pytest.fixture(scope="module", params=range(len(BOXES)), ids=["box30", "box-65", "box95"])
def noisy_box_scene(request):
    return render_scene([BOXES[request.param]], depth_noise=0.002, hole_fraction=0.05, seed=request.param)


def test_box_pose_and_best_grasp_with_exact_depth(box_scene):
    truth = box_scene.poses[0]
    found = grasp_from_mask(box_scene.masks[0], box_scene.depth, box_scene.intrinsics, clean=False)
    pose = found.pose
    assert found.support is not None and angle_deg(found.support.normal, box_scene.table.normal) < 0.5
    assert np.linalg.norm(pose.center - truth.center) < 0.002
    assert np.abs(pose.extents - truth.extents).max() < 0.002
    assert angle_deg(pose.rotation[:, 0], truth.rotation[:, 0]) < 2.0  # principal (long) axis
    best = found.grasps[0]
    table = box_scene.table
    offset = table.project(best.position[None]) - table.project(truth.center[None])
    assert np.linalg.norm(offset) < 0.002  # centred on the object (seen from above)
    assert angle_deg(best.closing_vector, truth.rotation[:, 1]) < 2.0  # closes across the narrow side
    assert truth.extents[1] < best.width <= 0.08
    assert best.approach == "top" and best.approach_vector @ table.normal < -0.999


def test_box_pose_with_noise_and_holes(noisy_box_scene):
    scene = noisy_box_scene
    truth = scene.poses[0]
    assert (scene.depth[scene.masks[0]] == 0).mean() > 0.03  # the holes are there
    found = grasp_from_mask(scene.masks[0], scene.depth, scene.intrinsics)
    assert np.linalg.norm(found.pose.center - truth.center) < 0.005
    assert angle_deg(found.pose.rotation[:, 0], truth.rotation[:, 0]) < 5.0
    assert angle_deg(found.grasps[0].closing_vector, truth.rotation[:, 1]) < 5.0


@pytest.fixture(scope="module")
def shapes_scene():
    return demo_scene()


def test_cylinder_and_sphere_sizes(shapes_scene):
    table = shapes_scene.table
    cylinder = object_pose(
        mask_to_points(shapes_scene.masks[1], shapes_scene.depth, shapes_scene.intrinsics), table
    )
    assert abs(cylinder.extents[2] - 0.12) < 0.002  # height from the support plane
    assert np.abs(cylinder.extents[:2] - 0.06).max() < 0.003  # diameter (pixel-limited rim)
    assert np.linalg.norm(cylinder.center - shapes_scene.poses[1].center) < 0.003
    sphere = object_pose(
        mask_to_points(shapes_scene.masks[2], shapes_scene.depth, shapes_scene.intrinsics), table
    )
    assert abs(sphere.extents[2] - 0.07) < 0.002


# ---------------------------------------------------------------------------------------------- grasps


def upright_box(size, support=None):
    """An ObjectPose of a box resting on the camera-facing table of the synthetic scene."""
    scene_table = support
    up = scene_table.normal
    axis0 = np.cross(up, [0.0, 0.0, 1.0])
    axis0 /= np.linalg.norm(axis0)
    rotation = np.stack([axis0, np.cross(up, axis0), up], axis=1)
    centre = -scene_table.offset * up + up * size[2] / 2
    return ObjectPose(center=centre, rotation=rotation, extents=np.asarray(size, float), centroid=centre,
                      n_points=100, upright=True)  # fmt: skip


def test_grasps_wider_than_the_gripper_are_dropped(shapes_scene):
    table = shapes_scene.table
    wide = upright_box((0.12, 0.10, 0.05), table)
    assert grasp_candidates(wide, 0.08, support=table) == []
    grasps = grasp_candidates(wide, 0.15, support=table)
    assert grasps and all(g.width <= 0.15 for g in grasps)
    narrow = upright_box((0.12, 0.05, 0.05), table)
    grasps = grasp_candidates(narrow, 0.08, support=table)
    assert grasps and all(angle_deg(g.closing_vector, narrow.rotation[:, 1]) < 1e-6 for g in grasps)


def test_grasps_colliding_with_the_support_are_dropped(shapes_scene):
    table = shapes_scene.table
    flat = upright_box((0.10, 0.04, 0.004), table)  # 4 mm tall: fingers would hit the table
    assert grasp_candidates(flat, 0.08, support=table) == []
    assert grasp_candidates(flat, 0.08)  # without a support nothing is in the way
    gripper = Gripper()
    tall = upright_box((0.14, 0.05, 0.06), table)
    grasps = grasp_candidates(tall, 0.08, support=table, gripper=gripper, clearance=0.005)
    assert {g.approach for g in grasps} == {"top", "side"}
    for grasp in grasps:
        assert table.distance(gripper_corners(grasp, gripper, 0.08)).min() >= 0.005 - 1e-9
    scores = [g.score for g in grasps]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1


def test_grasps_in_the_base_frame(shapes_scene):
    table = shapes_scene.table
    pose = upright_box((0.14, 0.05, 0.06), table)
    in_camera = grasp_candidates(pose, 0.08, support=table)
    in_base = grasp_candidates(pose, 0.08, support=table, camera_to_base=shapes_scene.camera_to_world)
    assert len(in_base) == len(in_camera) and in_base[0].frame == "base"
    best = in_base[0]
    assert np.allclose(best.approach_vector, (0, 0, -1), atol=1e-9)  # top-down in the table frame (z up)
    assert 0 < best.position[2] < 0.06  # between the table and the top of the box
    back = best.transformed(np.linalg.inv(shapes_scene.camera_to_world), frame="camera")
    assert np.allclose(back.position, in_camera[0].position) and np.allclose(
        back.rotation, in_camera[0].rotation
    )


def test_grasp_frame_convention_and_dict():
    grasp = Grasp(position=np.zeros(3), rotation=np.eye(3), width=0.05, score=0.5, approach="top")
    assert np.allclose(grasp.approach_vector, (0, 0, 1)) and np.allclose(grasp.closing_vector, (0, 1, 0))
    record = grasp.to_dict()
    assert record["quaternion_xyzw"] == [0.0, 0.0, 0.0, 1.0] and json.dumps(record)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"gripper_width": 0.0}, "^gripper_width: expected a positive"),
        ({"gripper_width": float("nan")}, "^gripper_width: expected a positive"),
        ({"approaches": ("bottom",)}, "^approaches:"),
        ({"approaches": "top"}, "^approaches:"),
        ({"camera_to_base": np.ones((4, 4))}, "^camera_to_base: expected a rigid transform"),
        ({"camera_to_base": np.eye(3)}, "^camera_to_base: expected a finite 4x4"),
        ({"support": "table"}, "^support: expected a Plane"),
        ({"max_candidates": 0}, "^max_candidates:"),
    ],
)
def test_grasp_candidates_bad_input(kwargs, pattern):
    pose = ObjectPose(center=np.array([0, 0, 1.0]), rotation=np.eye(3), extents=np.array([0.1, 0.04, 0.03]),
                      centroid=np.array([0, 0, 1.0]), n_points=10)  # fmt: skip
    with pytest.raises(InputError, match=pattern):
        grasp_candidates(pose, **{"gripper_width": 0.08, **kwargs})
    with pytest.raises(InputError, match="^obj: expected an ObjectPose"):
        grasp_candidates(np.zeros(3), 0.08)


# ---------------------------------------------------------------------------------------------- scene summary


def test_scene_summary_floor_segments_and_obstacles(shapes_scene):
    scene = shapes_scene
    patch = np.zeros_like(scene.masks[0])
    patch[440:470, 300:340] = True  # a patch of bare table near the camera: not an obstacle
    empty = np.zeros_like(patch)
    depth = scene.depth.copy()
    masks = np.concatenate([scene.masks, patch[None], empty[None]])
    summary = scene_summary(masks, depth, scene.intrinsics)
    assert summary.floor is not None and angle_deg(summary.floor.normal, scene.table.normal) < 0.5
    assert summary.skipped == [4]
    distances = [s.distance for s in summary.segments]
    assert distances == sorted(distances)
    by_index = {s.index: s for s in summary.segments}
    assert not by_index[3].obstacle and abs(by_index[3].height) < 0.01
    for index, truth in enumerate(scene.poses):
        segment = by_index[index]
        assert segment.obstacle
        assert abs(segment.height - truth.extents[2]) < 0.003
        nearest = np.linalg.norm(
            mask_to_points(scene.masks[index], depth, scene.intrinsics).points, axis=1
        ).min()
        assert nearest <= segment.distance < nearest + 0.01
    assert np.abs(by_index[0].pose.extents - scene.poses[0].extents).max() < 0.002
    assert json.dumps(summary.to_dict())
    with pytest.raises(InputError, match="^masks: expected"):
        scene_summary(masks[:, :10], depth, scene.intrinsics)
    with pytest.raises(InputError, match="^depth_scale:"):
        scene_summary(masks, depth, scene.intrinsics, depth_scale=-1.0)


# ---------------------------------------------------------------------------------------------- synthetic scenes


def test_synthetic_scene_is_consistent(shapes_scene):
    scene = shapes_scene
    assert scene.rgb.shape == (480, 640, 3) and scene.rgb.dtype == np.uint8
    assert scene.masks.shape == (3, 480, 640) and not (scene.masks.sum(axis=0) > 1).any()
    # every masked point lies on or inside its solid: deprojected depth agrees with the geometry
    cloud = mask_to_points(scene.masks[2], scene.depth, scene.intrinsics)
    sphere = scene.poses[2]
    assert np.abs(np.linalg.norm(cloud.points - sphere.center, axis=1) - 0.035).max() < 1e-4
    table_points = mask_to_points(~scene.masks.any(axis=0), scene.depth, scene.intrinsics)
    assert np.abs(scene.table.distance(table_points)).max() < 1e-4
    assert scene.depth_mm().dtype == np.uint16
    lying = render_scene(
        [Cylinder(radius=0.03, height=0.15, lying=True, yaw=0.4), Sphere(radius=0.02, position=(0.2, 0))]
    )
    cylinder = object_pose(mask_to_points(lying.masks[0], lying.depth, lying.intrinsics), lying.table)
    assert abs(cylinder.extents[0] - 0.15) < 0.003 and abs(cylinder.extents[2] - 0.06) < 0.002
    with pytest.raises(InputError, match="^Box.size"):
        render_scene([Box(size=(0.1, 0.0, 0.1))])
    with pytest.raises(InputError, match="^hole_fraction"):
        render_scene([], hole_fraction=1.5)


# ---------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, binary):
    rng = np.random.default_rng(4)
    points = rng.normal(size=(500, 3)).astype(np.float32)
    colors = rng.integers(0, 256, size=(500, 3), dtype=np.uint8)
    path = write_ply(tmp_path / "cloud.ply", PointCloud(points=points, colors=colors), binary=binary)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cloud.ply"]  # no temporary file left
    back = read_ply(path)
    assert np.allclose(back.points, points, rtol=1e-6, atol=1e-7) and (back.colors == colors).all()
    header = path.read_bytes().split(b"end_header")[0].decode()
    assert "element vertex 500" in header and ("binary_little_endian" in header) == binary
    plain = read_ply(write_ply(tmp_path / "plain.ply", points, binary=binary))
    assert plain.colors is None and len(plain) == 500
    with pytest.raises(InputError, match="^colors:"):
        write_ply(tmp_path / "bad.ply", points, colors[:10])


def test_depth_files(tmp_path):
    depth_mm = np.array([[0, 500, 65535], [1000, 1, 2]], dtype=np.uint16)
    write_depth_png(depth_mm, tmp_path / "d.png")
    depth, scale = load_depth(tmp_path / "d.png")
    assert (depth == depth_mm).all() and scale == 0.001
    np.save(tmp_path / "m.npy", depth_mm / 1000.0)
    depth, scale = load_depth(tmp_path / "m.npy")
    assert depth.dtype == np.float64 and scale == 1.0
    assert load_depth(tmp_path / "m.npy", depth_scale=0.5)[1] == 0.5
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="^depth: expected a single-channel"):
        load_depth(tmp_path / "rgb.png")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="^depth: expected a 2D"):
        load_depth(tmp_path / "cube.npy")
    with pytest.raises(InputError, match="^depth: expected an existing"):
        load_depth(tmp_path / "absent.png")
    (tmp_path / "d.jpg").write_bytes(b"")
    with pytest.raises(InputError, match=r"^depth: expected a \.png"):
        load_depth(tmp_path / "d.jpg")


def test_plane_dict_and_object_pose_transform(shapes_scene):
    plane: Plane = shapes_scene.table
    assert set(plane.to_dict()) == {"normal", "offset", "rmse", "inliers"}
    pose = shapes_scene.poses[0]
    moved = pose.transformed(shapes_scene.camera_to_world)
    assert np.allclose(moved.center[2], 0.035) and moved.frame == "base"  # box centre half its height up
    assert json.dumps(moved.to_dict())
