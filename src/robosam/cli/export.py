"""`robosam export onnx`: a SAM-family image model to an ONNX folder that `Segmenter(DIR)` and `--model DIR` run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robosam.cli.options import ModelOption, console, spinner
from robosam.errors import InputError

FORMATS = ("onnx",)


def export(
    format: Annotated[str, typer.Argument(help="Export format: onnx.")],
    model: ModelOption = "sam2.1-hiera-tiny",
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (new, empty or a previous export).")
    ] = Path("export"),
    fp16: Annotated[
        bool, typer.Option("--fp16/--no-fp16", help="Also write float16 graphs (float32 inputs and outputs).")
    ] = True,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.", min=14)] = 17,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Compare ONNX Runtime with PyTorch after export.")
    ] = True,
    video: Annotated[
        bool | None,
        typer.Option(
            "--video/--no-video",
            help="Also export the SAM 2 video step (default: when the model is a SAM 2 / 2.1 video model).",
        ),
    ] = None,
) -> None:
    """Export the image encoder and prompt decoders (points, boxes, mask input; any number of objects and
    points) of a SAM 1 / SlimSAM / SAM-HQ / SAM 2 / 2.1 model to ONNX.

    Writes encoder.onnx, decoder_multimask.onnx, decoder_single.onnx (and *.fp16.onnx), the image processor
    config and robosam.json (inputs, outputs, preprocessing, geometry, parity with PyTorch). Run the folder
    with `robosam segment --model DIR` or `Segmenter(DIR)` (needs onnxruntime: pip install robosam\\[onnx]).
    From a SAM 2 / 2.1 video model (a sam2_video folder, tracker preset or official checkpoint) it also
    writes the video step (memory_attention, video_decoder_*, mask_prompt, memory_encoder: the memory bank
    is the caller's), run by `robosam track --model DIR` or `VideoTracker(DIR)`.

    Example: robosam export onnx --model sam-vit-base --out exported/sam-vit-base

    Example: robosam export onnx --model sam2.1-hiera-tiny --video --out exported/sam2.1-tiny
    """
    if format not in FORMATS:
        raise InputError("FORMAT", f"one of {', '.join(FORMATS)}", format)
    if out.exists() and not out.is_dir():
        raise InputError("--out", "a folder", str(out))
    from robosam.onnx_runtime import require_onnxruntime

    require_onnxruntime()
    from robosam.export.onnx_export import export_onnx  # imports torch: only once input is valid

    dtypes = ("float32", "float16") if fp16 else ("float32",)
    with spinner(f"exporting {model} to ONNX"):
        manifest = export_onnx(model, out, dtypes=dtypes, opset=opset, check=check, video=video)
    geometry = manifest["geometry"]
    console.print(
        f"{model}: family {manifest['family']}, input {geometry['input_size']} px, "
        f"low-res masks {geometry['lowres_size']} px, dtypes {', '.join(manifest['dtypes'])}"
    )
    for graph, spec in manifest["graphs"].items():
        sizes = ", ".join(f"{f} ({(out / f).stat().st_size / 2**20:.1f} MiB)" for f in spec["files"].values())
        console.print(f"  {graph}: {sizes}")
    for dtype, report in manifest.get("parity", {}).items():
        decoder = report["decoder_multimask"]
        console.print(
            f"  parity {dtype}: mask IoU {decoder['mask_iou']:.4f}, "
            f"max |score diff| {decoder['scores_max_abs']:.1e}, max |logit diff| {decoder['logits_max_abs']:.1e}"
        )
    console.print(f"wrote robosam.json to {out}")
