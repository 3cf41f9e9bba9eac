"""`robosam segment`: masks for clicks and boxes on one image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from robosam.cli.options import (
    DeviceOption,
    ModelOption,
    console,
    parse_numbers,
    spinner,
)
from robosam.errors import InputError


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
    dtype: Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16.")] = "float32",
    compile: Annotated[
        bool, typer.Option("--compile", help="torch.compile the encoder and decoder (slow first call).")
    ] = False,
) -> None:
    """Segment objects in one image from clicks and boxes.

    Writes mask_NNN.png (0/255) per mask, overlay.png and masks.json (score, box, area, COCO RLE per mask).

    Example: robosam segment examples/truck.jpg --point 500,375 --out out/
    """
    from robosam.export.accelerate import check_compile, check_dtype, compile_model
    from robosam.export.manifest import is_export_folder
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
    backend = "onnx" if is_export_folder(model) else "torch"
    check_dtype(dtype, device, backend)
    if compile:
        check_compile(backend)
    rgb = load_image(image, argument="IMAGE")
    parse_prompts(rgb.shape[:2], points=points or None, labels=labels or None, box=boxes or None)
    from robosam.segmenter import Segmenter  # imports torch and transformers: only once input is valid

    with spinner(f"loading {model}"):
        segmenter = Segmenter(model, device=device, dtype=dtype)
        if compile:
            compile_model(segmenter.model)
    with spinner("encoding image and decoding masks"):
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
