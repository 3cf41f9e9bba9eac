"""`robosam auto`: segment everything in an image or a folder of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robosam.cli.options import DeviceOption, ModelOption, console, progress_bar, spinner
from robosam.errors import InputError


def _images(source: Path) -> list[Path]:
    from robosam.data import IMAGE_SUFFIXES

    if source.is_file():
        return [source]
    if source.is_dir():
        found = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if found:
            return found
        raise InputError(
            "IMAGE_OR_DIR", f"a folder with image files ({', '.join(IMAGE_SUFFIXES)})", str(source)
        )
    raise InputError("IMAGE_OR_DIR", "an existing image file or folder", str(source))


def auto(
    image_or_dir: Annotated[Path, typer.Argument(help="Image file, or a folder of images.")],
    model: ModelOption = "sam2.1-hiera-tiny",
    points_per_side: Annotated[int, typer.Option(help="Clicks per side of the grid.")] = 32,
    points_per_batch: Annotated[int, typer.Option(help="Clicks per decoder call.")] = 64,
    pred_iou_thresh: Annotated[float, typer.Option(help="Keep masks with predicted IoU above.")] = 0.88,
    stability_score_thresh: Annotated[float, typer.Option(help="Keep masks this stable or more.")] = 0.95,
    stability_score_offset: Annotated[float, typer.Option(help="Logit offset of the stability score.")] = 1.0,
    box_nms_thresh: Annotated[float, typer.Option(help="Box IoU of NMS within a crop.")] = 0.7,
    crop_n_layers: Annotated[int, typer.Option(help="Layers of image crops (0: whole image).")] = 0,
    crop_nms_thresh: Annotated[float, typer.Option(help="Box IoU of NMS across crops.")] = 0.7,
    crop_overlap_ratio: Annotated[float, typer.Option(help="Overlap of crops.")] = 512 / 1500,
    crop_n_points_downscale_factor: Annotated[int, typer.Option(help="Grid shrink per crop layer.")] = 1,
    min_mask_region_area: Annotated[
        int, typer.Option(help="Fill holes / drop islands under this many pixels.")
    ] = 0,
    multimask: Annotated[bool, typer.Option(help="3 masks per click.")] = True,
    mask_threshold: Annotated[float, typer.Option(help="Logit of the mask boundary.")] = 0.0,
    use_m2m: Annotated[
        bool, typer.Option("--use-m2m", help="Refine each candidate once with its own mask (SAM 2's m2m).")
    ] = False,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the decoder.")] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    device: DeviceOption = "auto",
) -> None:
    """Segment everything: a grid of clicks over each image, filtered as Meta's automatic mask generator.

    Writes coco.json (images, one annotation per mask with COCO RLE, bbox, area, score = predicted IoU,
    stability_score, point_coords, crop_box) and overlays/<image>.png with every mask coloured.

    Example: robosam auto examples/truck.jpg --points-per-side 16 --out out/
    """
    from robosam.automatic import AutoMasker

    images = _images(image_or_dir)
    knobs = {
        "points_per_side": points_per_side,
        "points_per_batch": points_per_batch,
        "pred_iou_thresh": pred_iou_thresh,
        "stability_score_thresh": stability_score_thresh,
        "stability_score_offset": stability_score_offset,
        "box_nms_thresh": box_nms_thresh,
        "crop_n_layers": crop_n_layers,
        "crop_nms_thresh": crop_nms_thresh,
        "crop_overlap_ratio": crop_overlap_ratio,
        "crop_n_points_downscale_factor": crop_n_points_downscale_factor,
        "min_mask_region_area": min_mask_region_area,
        "multimask": multimask,
        "mask_threshold": mask_threshold,
        "use_m2m": use_m2m,
        "compile": compile,
    }
    AutoMasker.validate_knobs(
        **{
            k: knobs[k]
            for k in ("points_per_side", "points_per_batch", "crop_n_layers", "crop_overlap_ratio")
        },
        crop_n_points_downscale_factor=crop_n_points_downscale_factor,
        min_mask_region_area=min_mask_region_area,
    )
    from robosam.automatic import to_coco_results
    from robosam.io import load_image, write_json_atomic
    from robosam.masks import write_png_atomic
    from robosam.segmenter import Segmenter
    from robosam.visualize import draw_masks

    with spinner(f"loading {model}"):
        masker = AutoMasker(Segmenter(model, device=device), **knobs)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "object"}]}
    with progress_bar() as bar:
        images_task = bar.add_task("images", total=len(images))
        points_task = bar.add_task("clicks", total=None)
        for image_id, path in enumerate(images, start=1):
            rgb = load_image(path, argument="IMAGE_OR_DIR")
            bar.reset(points_task, total=masker.num_points(rgb.shape[:2]), description=f"clicks {path.name}")
            result = masker.generate(
                rgb, progress=lambda done, _total: bar.update(points_task, completed=done)
            )
            coco["images"].append(
                {"id": image_id, "file_name": str(path), "height": rgb.shape[0], "width": rgb.shape[1]}
            )
            records = to_coco_results(result, image_id=image_id)
            for record, point, crop in zip(records, result.data["point_coords"], result.data["crop_box"]):
                x0, y0, x1, y1 = (int(v) for v in crop)
                record.update(
                    id=len(coco["annotations"]) + 1,
                    iscrowd=0,
                    point_coords=[[float(v) for v in point]],
                    crop_box=[x0, y0, x1 - x0, y1 - y0],
                )
                coco["annotations"].append(record)
            write_png_atomic(draw_masks(rgb, result.masks), out / "overlays" / f"{path.stem}.png")
            timings = result.timings
            console.print(
                f"{path.name}: {len(result)} masks  encoder {timings['encoder_s']:.2f} s  "
                f"after encoder {timings['total_s'] - timings['encoder_s']:.2f} s"
            )
            bar.advance(images_task)
    write_json_atomic(coco, out / "coco.json")
    console.print(
        f"wrote {len(coco['annotations'])} masks on {len(images)} image(s): coco.json, overlays/ in {out}"
    )
