"""`robosam ground`: masks for what a text prompt names in one image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robosam.cli.options import DeviceOption, ModelOption, console, spinner

DetectorOption = Annotated[
    str,
    typer.Option(
        "--detector",
        "-d",
        help="Detector preset (see `robosam models --kind detector`), hub id or folder.",
    ),
]


def ground(
    image: Annotated[Path, typer.Argument(help="Image file (JPEG, PNG, ...).")],
    text: Annotated[
        str, typer.Option("--text", "-t", help='What to find: "red cup", several as "cup. bowl. spoon".')
    ],
    detector: DetectorOption = "grounding-dino-tiny",
    model: ModelOption = "sam2.1-hiera-tiny",
    box_threshold: Annotated[
        float, typer.Option("--box-threshold", help="Minimum detector confidence, 0..1.")
    ] = 0.3,
    text_threshold: Annotated[
        float, typer.Option("--text-threshold", help="Minimum phrase confidence, 0..1 (Grounding DINO).")
    ] = 0.25,
    max_detections: Annotated[
        int | None, typer.Option("--max-detections", help="Keep at most this many, best first.")
    ] = None,
    clip: Annotated[
        str | None,
        typer.Option(
            "--clip", help="Re-rank the masks by CLIP similarity: hub id or folder of a CLIP model."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    device: DeviceOption = "auto",
) -> None:
    """Find and segment everything a phrase names: an open-vocabulary detector finds boxes, SAM segments them
    (SAM 3 as --detector sam3 segments by itself; --model is then not loaded). With --clip, the masks are
    ordered by CLIP similarity of the masked crop to their phrase (clip_score in coco.json).

    Writes mask_NNN.png (0/255) per object, overlay.png (masks, boxes and labels) and coco.json (COCO
    images / annotations / categories with RLE masks and scores; one category per phrase). A phrase that
    matches nothing writes an empty coco.json.

    Example: robosam ground examples/truck.jpg --text "truck. tire" --out out/
    """
    from robosam.errors import InputError
    from robosam.grounding.base import check_threshold, parse_phrases
    from robosam.io import load_image

    phrases = parse_phrases(text, argument="--text")
    check_threshold(box_threshold, "--box-threshold")
    check_threshold(text_threshold, "--text-threshold")
    if max_detections is not None and max_detections < 1:
        raise InputError("--max-detections", "a positive integer", max_detections)
    rgb = load_image(image, argument="IMAGE")

    from robosam.grounding import TextSegmenter, load_detector  # torch and transformers: input is valid

    with spinner(f"loading {detector}"):
        found_detector = load_detector(detector, device=device)
        segmenter = None if found_detector.gives_masks else model
        ranker = None
        if clip is not None:
            from robosam.grounding import ClipRanker

            ranker = ClipRanker(clip, device=device)
        text_segmenter = TextSegmenter(segmenter, detector=found_detector, ranker=ranker, device=device)
    with spinner("detecting and segmenting"):
        result = text_segmenter.segment(rgb, phrases, box_threshold, text_threshold, max_detections)
    write_ground_outputs(out, image, rgb, result, phrases, detector, None if segmenter is None else model)
    for index in range(len(result)):
        x1, y1, x2, y2 = result.data["detector_boxes"][index]
        console.print(
            f"{index}: {result.labels[index]}  score {result.scores[index]:.3f}  "
            f"area {int(result.masks[index].sum())} px  box ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f})"
        )
    if not len(result):
        console.print(
            f"nothing matches {'. '.join(phrases)!r} (box threshold {box_threshold}, "
            f"text threshold {text_threshold})"
        )
    console.print(f"wrote {len(result)} mask(s), overlay.png and coco.json to {out}")


def write_ground_outputs(out, image_path, rgb, result, phrases, detector, model) -> None:  # noqa: ANN001
    """mask_NNN.png, overlay.png (with labels) and coco.json for a ``TextSegmenter`` result."""
    import cv2
    import numpy as np

    from robosam.io import write_json_atomic
    from robosam.masks import write_mask_png, write_png_atomic
    from robosam.visualize import PALETTE, draw_masks

    out.mkdir(parents=True, exist_ok=True)
    boxes = result.data["detector_boxes"]
    canvas = draw_masks(rgb, result.masks, boxes=boxes)
    scale = max(0.4, min(rgb.shape[:2]) / 800)
    for index, (x1, y1, _, _) in enumerate(boxes):
        caption = f"{result.labels[index]} {result.scores[index]:.2f}"
        (w, h), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x, y = int(x1), max(int(y1), h + 4)
        colour = PALETTE[index % len(PALETTE)].tolist()
        cv2.rectangle(canvas, (x, y - h - 4), (x + w + 4, y), colour, thickness=-1)
        cv2.putText(
            canvas, caption, (x + 2, y - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    write_png_atomic(canvas, out / "overlay.png")
    categories = [{"id": i + 1, "name": phrase} for i, phrase in enumerate(phrases)]
    category_of = {phrase: i + 1 for i, phrase in enumerate(phrases)}
    annotations = []
    for index, record in enumerate(result.to_coco() if len(result) else []):  # to_coco needs a mask
        name = f"mask_{index:03d}.png"
        write_mask_png(result.masks[index], out / name)
        annotations.append(
            {
                "id": index + 1,
                "image_id": 1,
                "category_id": category_of[str(result.labels[index])],
                "iscrowd": 0,
                **record,
                "detector_box": np.asarray(boxes[index]).tolist(),
                **(
                    {"clip_score": float(result.data["clip_score"][index])}
                    if "clip_score" in result.data
                    else {}
                ),
                "file": name,
            }
        )
    height, width = rgb.shape[:2]
    write_json_atomic(
        {
            "info": {"description": "robosam ground", "detector": str(detector), "model": model},
            "images": [{"id": 1, "file_name": str(image_path), "height": height, "width": width}],
            "categories": categories,
            "annotations": annotations,
            "timings_s": result.timings,
        },
        out / "coco.json",
    )
