"""`robosam convert`: an official Meta checkpoint to a transformers folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robosam.cli.options import (
    console,
    spinner,
)
from robosam.errors import InputError


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
    with spinner(f"reading {checkpoint.name}"):
        model = load_official_checkpoint(checkpoint, video=video)
    with spinner(f"writing {out_dir}"):
        folder = save_converted(model, out_dir)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    console.print(f"{checkpoint.name}: {describe(model)} ({type(model).__name__}, {params:.1f} M parameters)")
    console.print(f"wrote {', '.join(sorted(p.name for p in folder.iterdir()))} to {folder}")
