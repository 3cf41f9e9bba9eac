"""The ``robosam`` command line: parses and validates arguments, calls the library, prints a summary.

Every command writes machine-readable output under ``--out``; a user's mistake is one line on stderr
and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console

from robosam.errors import InputError

app = typer.Typer(
    name="robosam",
    help="Segment Anything for robots. Run `robosam COMMAND --help` for an example of each command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Preset name (see `robosam models`), hub id, model folder or .pt/.pth file."
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps.")
]


def parse_numbers(text: str, counts: tuple[int, ...], argument: str) -> list[float]:
    """``"500,375"`` to ``[500.0, 375.0]``; the count must be one of ``counts``, else ``InputError``."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) not in counts:
        shapes = " or ".join(str(c) for c in counts)
        raise InputError(argument, f"{shapes} comma-separated numbers", text)
    return values


def _status(message: str) -> Any:
    """A spinner on stderr for work that takes a while (silent when stderr is not a terminal)."""
    return err_console.status(message, spinner="dots")


@app.command()
def models() -> None:
    """List the model presets: name, family, hub id, input size and parameter count.

    Example: robosam models
    """
    from robosam.models import DEFAULT_PRESET, PRESETS

    rows = [("name", "family", "input", "params (M)", "hub id", "note")]
    rows += [
        (p.name, p.family, str(p.input_size), f"{p.params_m:.1f}", p.hub_id, p.note) for p in PRESETS.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"default: {DEFAULT_PRESET}; any hub id, model folder or Meta checkpoint (.pt/.pth) also works")


@app.command()
def segment(
    image: Annotated[Path, typer.Argument(help="Image file (JPEG, PNG, ...).")],
    point: Annotated[
        list[str] | None,
        typer.Option("--point", "-p", help="x,y or x,y,label (1 positive, 0 negative); repeatable."),
    ] = None,
    box: Annotated[
        list[str] | None,
        typer.Option("--box", "-b", help="x1,y1,x2,y2 in pixels; repeat for several objects."),
    ] = None,
    model: ModelOption = "sam2.1-hiera-tiny",
    multimask: Annotated[
        bool, typer.Option("--multimask", help="Return 3 candidate masks per object.")
    ] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    device: DeviceOption = "auto",
) -> None:
    """Segment objects in one image from clicks and boxes.

    Writes mask_NNN.png (0/255) per mask, overlay.png and masks.json (score, box, area, COCO RLE per mask).

    Example: robosam segment examples/truck.jpg --point 500,375 --out out/
    """
    from robosam.io import load_image, write_json_atomic
    from robosam.masks import write_mask_png, write_png_atomic
    from robosam.prompts import parse_prompts
    from robosam.visualize import draw_masks

    points, labels = [], []
    for text in point or []:
        values = parse_numbers(text, (2, 3), "--point")
        points.append(values[:2])
        labels.append(int(values[2]) if len(values) == 3 else 1)
    boxes = [parse_numbers(text, (4,), "--box") for text in box or []]
    if not points and not boxes:
        raise InputError("--point/--box", "at least one --point x,y or --box x1,y1,x2,y2", None)
    rgb = load_image(image, argument="IMAGE")
    parse_prompts(rgb.shape[:2], points=points or None, labels=labels or None, box=boxes or None)
    from robosam.predictor import Segmenter  # imports torch and transformers: only once input is valid

    with _status(f"loading {model}"):
        segmenter = Segmenter(model, device=device)
    with _status("encoding image and decoding masks"):
        segmenter.set_image(rgb)
        result = segmenter.predict(
            points=points or None, labels=labels or None, box=boxes or None, multimask=multimask
        )
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for index, record in enumerate(result.to_coco()):
        name = f"mask_{index:03d}.png"
        write_mask_png(result.masks[index], out / name)
        records.append({"file": name, "object": int(result.object_ids[index]), **record})
        x, y, w, h = record["bbox"]
        console.print(
            f"mask {index}: object {result.object_ids[index]}  score {record['score']:.3f}  "
            f"area {record['area']} px  box ({x:.0f}, {y:.0f}, {x + w:.0f}, {y + h:.0f})"
        )
    write_png_atomic(
        draw_masks(
            rgb, result.masks, np.asarray(points) if points else None, np.asarray(labels), np.asarray(boxes)
        ),
        out / "overlay.png",
    )
    write_json_atomic(
        {
            "image": str(image),
            "model": model,
            "image_size": {"height": rgb.shape[0], "width": rgb.shape[1]},
            "prompts": {"points": points, "labels": labels, "boxes": boxes},
            "timings_s": segmenter.last_timings,
            "masks": records,
        },
        out / "masks.json",
    )
    console.print(f"wrote {len(records)} mask(s), overlay.png and masks.json to {out}")


@app.command()
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
    model: ModelOption = "sam2.1-hiera-tiny",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    device: DeviceOption = "auto",
) -> None:
    """Segment one object in an RGB-D frame, print its 3D pose and best grasps.

    Writes cloud.ply (the object's coloured points, metres, camera frame), grasps.json (pose, support
    plane, ranked grasps with position, quaternion x,y,z,w, width, score), mask.png and grasp.png (box and
    grasps drawn on the image).

    Example: robosam grasp color.png depth.png --intrinsics camera.json --point 320,240 --out out/
    """
    import json

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from robosam.geometry import CameraIntrinsics, draw_grasps, grasp_from_mask, load_depth, write_ply
    from robosam.geometry.deproject import as_transform
    from robosam.io import load_image, write_json_atomic
    from robosam.masks import read_mask_png, write_mask_png, write_png_atomic
    from robosam.prompts import parse_prompts

    prompts = [
        name for name, value in (("--point", point), ("--box", box), ("--mask", mask)) if value is not None
    ]
    if len(prompts) != 1:
        raise InputError(
            "--point/--box/--mask", "exactly one of --point x,y, --box x1,y1,x2,y2 or --mask PNG", prompts
        )
    if top_k < 1:
        raise InputError("--top-k", "a positive integer", top_k)
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
    else:  # check the prompt before loading a model
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
        if object_mask is None:
            from robosam.predictor import Segmenter  # torch and transformers: only once the input is valid

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
        "prompt": {"point": point, "box": box, "mask": None if mask is None else str(mask)},
        "model": None if mask is not None else model,
        "gripper_width": gripper_width,
        "camera_to_base": None if transform is None else transform.tolist(),
        "mask_area": int(object_mask.sum()),
        **found.to_dict(),
    }
    write_json_atomic(report, out / "grasps.json")

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
        p, q = g.position * 1000, g.orientation
        console.print(
            f"grasp {rank}: {g.approach:4s} score {g.score:.3f} width {g.width * 1000:.1f} mm "
            f"at ({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f}) mm ({g.frame} frame), quaternion xyzw "
            f"({q[0]:.3f}, {q[1]:.3f}, {q[2]:.3f}, {q[3]:.3f})"
        )
    console.print(f"wrote cloud.ply, grasps.json, mask.png and grasp.png to {out}")


@app.command("eval")
def eval_command(
    pred: Annotated[
        Path | None,
        typer.Option("--pred", help="Predicted DAVIS-layout folder (one folder of PNGs per sequence)."),
    ] = None,
    gt: Annotated[
        Path | None,
        typer.Option("--gt", help="Ground-truth DAVIS-layout folder (palette PNGs of object ids)."),
    ] = None,
    sequences: Annotated[
        str | None, typer.Option("--sequences", help="Comma-separated sequences (default all).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="COCO .json, DAVIS root, or folder with images/ and masks/.")
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol", help="center, random-point, point-noise, box, clicks, video-mask or video-click."
        ),
    ] = "center",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Preset, hub id, model folder or .pt/.pth (with --data)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("eval-results"),
    device: DeviceOption = "auto",
    max_clicks: Annotated[int, typer.Option("--max-clicks", help="Click cap for the clicks protocol.")] = 20,
    noise: Annotated[float, typer.Option("--noise", help="Point noise std in pixels (point-noise).")] = 5.0,
    jitter: Annotated[float, typer.Option("--jitter", help="Box jitter in pixels (box).")] = 0.0,
    select: Annotated[
        str, typer.Option("--select", help="score (model's pick) or oracle (best true IoU).")
    ] = "score",
    limit: Annotated[
        int | None, typer.Option("--limit", help="Evaluate only the first N images/sequences.")
    ] = None,
    stride: Annotated[int, typer.Option("--stride", help="Every Nth annotated DAVIS frame as an image.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random protocols.")] = 0,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
) -> None:
    """Evaluate: score existing predictions (DAVIS J&F, no model) or run a model under a prompt protocol.

    Writes OUT/metrics.json (every figure), OUT/report.md and PNG plots (mIoU vs clicks, per-sequence bars,
    latency per stage).

    Example: robosam eval --pred results/osvos --gt DAVIS/Annotations/480p --sequences blackswan,dog --out ev/

    Example: robosam eval --data ../shared/data/still_images_davis2016 --protocol clicks --model sam-vit-base --out ev/
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from robosam.evaluation.command import parse_sequences, run_protocol, score_predictions

    names = parse_sequences(sequences)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )
    if pred is not None or gt is not None:
        if pred is None or gt is None or data is not None:
            raise InputError("--pred/--gt", "both --pred and --gt (and no --data)", f"pred={pred}, gt={gt}")
        with progress:
            metrics, written = score_predictions(pred, gt, names, out, progress, plots=plots)
        g = metrics["global"]
        console.print(
            f"J&F-Mean {g['J&F-Mean']:.4f}  J-Mean {g['J-Mean']:.4f}  F-Mean {g['F-Mean']:.4f}  "
            f"over {len(metrics['per_object'])} object(s); wrote {written['metrics']}"
        )
        return
    if data is None or model is None:
        raise InputError("--data/--model", "--pred DIR --gt DIR, or --data PATH --model MODEL", None)
    with progress:
        metrics, written = run_protocol(
            data, protocol, model, out, progress, device=device, sequences=names, max_clicks=max_clicks,
            noise_px=noise, jitter_px=jitter, select=select, limit=limit, stride=stride, seed=seed, plots=plots,
        )  # fmt: skip
    if "global" in metrics:
        g = metrics["global"]
        console.print(f"{protocol}: J&F-Mean {g['J&F-Mean']:.4f} over {len(metrics['per_object'])} object(s)")
    else:
        s = metrics["summary"]
        line = f"{protocol}: {s['objects']} object(s) in {s['images']} image(s)"
        for key in ("mIoU", "NoC@85", "NoC@90"):
            if key in s:
                line += f"  {key} {s[key]:.3f}"
        console.print(line)
    console.print(f"wrote {', '.join(p.name for p in written.values())} to {out}")


@app.command()
def convert(
    checkpoint: Annotated[Path, typer.Argument(help="Meta checkpoint: sam_vit_*.pth, sam2*_hiera_*.pt.")],
    out_dir: Annotated[Path, typer.Argument(help="New (or empty) folder for the transformers model.")],
    video: Annotated[
        bool, typer.Option("--video", help="SAM 2 only: write Sam2VideoModel (memory modules kept).")
    ] = False,
) -> None:
    """Convert an official Meta SAM 1 / SAM 2 / SAM 2.1 checkpoint to a transformers model folder.

    The folder (model.safetensors, config.json, preprocessor_config.json) loads with
    `robosam segment --model OUT_DIR`, `robosam.models.load_model` and `AutoModel.from_pretrained`.
    The checkpoint is read without running pickled code; unmapped or missing weights are an error.

    Example: robosam convert sam_vit_b_01ec64.pth models/sam-vit-b
    """
    from robosam.models.checkpoints import describe, load_official_checkpoint, save_converted

    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError("OUT_DIR", "a new or empty folder", str(out_dir))
    with _status(f"reading {checkpoint.name}"):
        model = load_official_checkpoint(checkpoint, video=video)
    with _status(f"writing {out_dir}"):
        folder = save_converted(model, out_dir)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    console.print(f"{checkpoint.name}: {describe(model)} ({type(model).__name__}, {params:.1f} M parameters)")
    console.print(f"wrote {', '.join(sorted(p.name for p in folder.iterdir()))} to {folder}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app, turning ``InputError`` into one line and exit code 2."""
    try:
        app(args=argv, prog_name="robosam")
    except InputError as error:
        print(f"robosam: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
