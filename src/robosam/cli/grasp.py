"""`robosam grasp`: one object's 3D pose and grasps from an RGB-D frame."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from robosam.cli.options import (
    DeviceOption,
    ModelOption,
    console,
    err_console,
    parse_numbers,
)
from robosam.errors import InputError


def grasp(
    rgb: Annotated[Path, typer.Argument(help="Colour image registered to the depth image.")],
    depth: Annotated[Path, typer.Argument(help="Depth image: 16-bit PNG (mm), float/int .npy or .tif.")],
    intrinsics: Annotated[
        Path,
        typer.Option(
            "--intrinsics", "-i", help="JSON/YAML: fx,fy,cx,cy,width,height, ROS CameraInfo or RealSense."
        ),
    ],
    point: Annotated[str | None, typer.Option("--point", "-p", help="x,y click on the object.")] = None,
    box: Annotated[str | None, typer.Option("--box", "-b", help="x1,y1,x2,y2 box around the object.")] = None,
    mask: Annotated[
        Path | None, typer.Option("--mask", help="Object mask PNG (non-zero = object); no model.")
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", "-t", help='What to pick up: "red cup" (best match is used).')
    ] = None,
    detector: Annotated[
        str, typer.Option("--detector", "-d", help="Detector preset, hub id or folder (with --text).")
    ] = "grounding-dino-tiny",
    box_threshold: Annotated[
        float, typer.Option("--box-threshold", help="Minimum detector confidence, 0..1 (with --text).")
    ] = 0.3,
    text_threshold: Annotated[
        float, typer.Option("--text-threshold", help="Minimum phrase confidence, 0..1 (with --text).")
    ] = 0.25,
    depth_scale: Annotated[
        float | None,
        typer.Option("--depth-scale", help="Metres per depth unit [default: 0.001 integer, 1 float]."),
    ] = None,
    gripper_width: Annotated[
        float, typer.Option("--gripper-width", help="Maximum jaw opening, metres.")
    ] = 0.08,
    camera_to_base: Annotated[
        Path | None,
        typer.Option("--camera-to-base", help="JSON 4x4 camera-to-base matrix; grasps in base frame."),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Grasps to print and draw.")] = 3,
    rerun: Annotated[
        Path | None,
        typer.Option("--rerun", help="Also log the image, mask, points, pose and grasps to FILE.rrd."),
    ] = None,
    model: ModelOption = "sam2.1-hiera-tiny",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    device: DeviceOption = "auto",
) -> None:
    """Segment one object in an RGB-D frame, print its 3D pose and best grasps.

    Writes cloud.ply (the object's coloured points, metres, camera frame), grasps.json (pose, support
    plane, ranked grasps with position, quaternion x,y,z,w, width, score), mask.png and grasp.png (box and
    grasps drawn on the image).

    With --text, an open-vocabulary detector finds the phrase and SAM segments the best match (SAM 3 as
    --detector sam3 segments by itself); exit code 1 when nothing matches.

    Example: robosam grasp color.png depth.png --intrinsics camera.json --point 320,240 --out out/
    """
    import json

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from robosam.geometry import CameraIntrinsics, draw_grasps, grasp_from_mask, load_depth, write_ply
    from robosam.geometry.types import as_transform
    from robosam.io import load_image, write_json_atomic
    from robosam.masks import mask_to_box, read_mask_png, write_mask_png, write_png_atomic
    from robosam.prompts import parse_prompts

    prompts = [
        name
        for name, value in (("--point", point), ("--box", box), ("--mask", mask), ("--text", text))
        if value is not None
    ]
    if len(prompts) != 1:
        raise InputError(
            "--point/--box/--mask",  # (and --text; the name kept as before for scripts matching it)
            'exactly one of --point x,y, --box x1,y1,x2,y2, --mask PNG or --text "red cup"',
            prompts,
        )
    if text is not None:
        from robosam.grounding.base import check_threshold, parse_phrases

        parse_phrases(text, argument="--text")
        check_threshold(box_threshold, "--box-threshold")
        check_threshold(text_threshold, "--text-threshold")
    if top_k < 1:
        raise InputError("--top-k", "a positive integer", top_k)
    if rerun is not None:
        from robosam.recording import RerunRecording

        RerunRecording.check_path(rerun)
    camera = CameraIntrinsics.from_file(intrinsics)
    image = load_image(rgb, argument="RGB")
    depth_image, scale = load_depth(depth, depth_scale)
    if depth_image.shape != camera.shape:
        raise InputError(
            "DEPTH", f"a {camera.width}x{camera.height} depth image like the intrinsics", depth_image
        )
    if image.shape[:2] != depth_image.shape:
        raise InputError("RGB", f"a {camera.width}x{camera.height} image like the depth image", image)
    if not gripper_width > 0:
        raise InputError("--gripper-width", "a positive jaw opening in metres", gripper_width)
    transform = None
    if camera_to_base is not None:
        try:
            data = json.loads(camera_to_base.read_text())
        except (OSError, ValueError) as error:
            raise InputError(
                "--camera-to-base", "a readable JSON file", str(camera_to_base), detail=str(error)
            ) from None
        matrix = data.get("matrix") if isinstance(data, dict) else data
        try:
            transform = as_transform(np.asarray(matrix, dtype=float), "--camera-to-base")
        except (TypeError, ValueError) as error:
            if isinstance(error, InputError):
                raise
            raise InputError("--camera-to-base", "a 4x4 matrix (or {'matrix': 4x4})", matrix) from None
    object_mask, prompt = None, {}
    if mask is not None:
        object_mask = read_mask_png(mask, argument="--mask")
        if object_mask.shape != depth_image.shape:
            raise InputError(
                "--mask", f"a {camera.width}x{camera.height} mask like the depth image", object_mask
            )
    elif text is None:  # check the prompt before loading a model
        if point is not None:
            prompt = {"points": [parse_numbers(point, (2,), "--point")], "labels": [1]}
        else:
            prompt = {"box": parse_numbers(box, (4,), "--box")}
        parse_prompts(image.shape[:2], **prompt)

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,  # no stray blank line in logs and pipes
    ) as progress:
        match = None
        if text is not None:
            from robosam.grounding import TextSegmenter, load_detector  # torch: only once input is valid

            task = progress.add_task(f"loading {detector}", total=None)
            text_detector = load_detector(detector, device=device)
            segmenter = None if text_detector.gives_masks else model
            text_segmenter = TextSegmenter(segmenter, detector=text_detector, device=device)
            progress.update(task, description=f"finding {text!r}")
            found_text = text_segmenter.segment(image, text, box_threshold, text_threshold)
            progress.remove_task(task)
            if not len(found_text):
                err_console.print(
                    f"robosam: nothing matches {text!r} (box threshold {box_threshold}, "
                    f"text threshold {text_threshold})"
                )
                raise typer.Exit(1)
            match = found_text[0]
            object_mask = match.masks[0]
        elif object_mask is None:
            from robosam.segmenter import Segmenter  # torch and transformers: only once the input is valid

            task = progress.add_task(f"loading {model}", total=None)
            segmenter = Segmenter(model, device=device)
            progress.update(task, description="segmenting")
            segmenter.set_image(image)
            object_mask = segmenter.predict(**prompt, multimask=False).best().masks[0]
            progress.remove_task(task)
        task = progress.add_task("3D pose and grasps", total=None)
        found = grasp_from_mask(
            object_mask,
            depth_image,
            camera,
            scale,
            rgb=image,
            gripper_width=gripper_width,
            camera_to_base=transform,
        )
        progress.remove_task(task)

    out.mkdir(parents=True, exist_ok=True)
    write_mask_png(object_mask, out / "mask.png")
    write_ply(out / "cloud.ply", found.cloud)
    camera_grasps = (
        found.grasps
        if transform is None
        else [g.transformed(np.linalg.inv(transform), "camera") for g in found.grasps]
    )
    write_png_atomic(
        draw_grasps(image, camera, found.pose, camera_grasps, object_mask, top_k), out / "grasp.png"
    )
    report = {
        "rgb": str(rgb),
        "depth": str(depth),
        "depth_scale": scale,
        "intrinsics": camera.to_dict(),
        "prompt": {"point": point, "box": box, "mask": None if mask is None else str(mask), "text": text},
        "model": None if mask is not None or (match is not None and segmenter is None) else model,
        "detector": None if text is None else detector,
        "match": None
        if match is None
        else {
            "label": str(match.labels[0]),
            "score": float(match.scores[0]),
            "detector_box": match.data["detector_boxes"][0].tolist(),
        },
        "gripper_width": gripper_width,
        "camera_to_base": None if transform is None else transform.tolist(),
        "mask_area": int(object_mask.sum()),
        **found.to_dict(),
    }
    write_json_atomic(report, out / "grasps.json")
    if rerun is not None:
        with RerunRecording(rerun) as recording:
            recording.set_frame(0)
            recording.log_image(image, object_mask[None], [1], mask_to_box(object_mask)[None])
            recording.log_points(found.cloud.points, found.cloud.colors, name="world/points/1")
            recording.log_object(1, found.pose)
            recording.log_grasps(camera_grasps[:top_k], name="world/grasps/1")

    if match is not None:
        console.print(f"matched {match.labels[0]!r} with score {match.scores[0]:.3f}")
    pose = found.pose
    c, e = pose.center * 1000, pose.extents * 1000
    q = pose.quaternion
    console.print(
        f"object: {len(found.cloud)} points, centre ({c[0]:.1f}, {c[1]:.1f}, {c[2]:.1f}) mm, "
        f"size {e[0]:.1f} x {e[1]:.1f} x {e[2]:.1f} mm, quaternion xyzw ({q[0]:.3f}, {q[1]:.3f}, {q[2]:.3f}, {q[3]:.3f})"
    )
    console.print("support plane: " + ("found" if found.support is not None else "none (box from PCA axes)"))
    if not found.grasps:
        console.print(f"no grasp fits a {gripper_width * 1000:.0f} mm gripper")
    for rank, g in enumerate(found.grasps[:top_k]):
        p, q = g.position * 1000, g.quaternion
        console.print(
            f"grasp {rank}: {g.approach:4s} score {g.score:.3f} width {g.width * 1000:.1f} mm "
            f"at ({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f}) mm ({g.frame} frame), quaternion xyzw "
            f"({q[0]:.3f}, {q[1]:.3f}, {q[2]:.3f}, {q[3]:.3f})"
        )
    console.print(f"wrote cloud.ply, grasps.json, mask.png and grasp.png to {out}")
