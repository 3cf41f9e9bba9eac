"""`robosam finetune`: train the prompt encoder and mask decoder on your own labelled images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robosam.cli.options import DEFAULT_MODEL, DeviceOption, ModelOption, console, progress_bar


def finetune(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="Training data: COCO .json, DAVIS root, or folder with images/ and masks/."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (rerun with the same one to resume).")
    ],
    model: ModelOption = DEFAULT_MODEL,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training images.")] = 10,
    lr: Annotated[float, typer.Option("--lr", help="AdamW learning rate.")] = 1e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per optimizer step.")] = 4,
    lora: Annotated[
        int | None,
        typer.Option(
            "--lora",
            help="LoRA rank on the mask decoder (needs the finetune extra); default: train it in full.",
        ),
    ] = None,
    prompts: Annotated[
        str, typer.Option("--prompts", help="First prompt per object: box, point or mixed (50/50).")
    ] = "mixed",
    val: Annotated[
        Path | None, typer.Option("--val", help="Validation dataset (any --data format) instead of a split.")
    ] = None,
    val_split: Annotated[
        float, typer.Option("--val-split", help="Fraction of the training images held out for validation.")
    ] = 0.15,
    clicks: Annotated[
        int, typer.Option("--clicks", help="Correction clicks after the first prompt, per object and step.")
    ] = 2,
    max_objects: Annotated[
        int, typer.Option("--max-objects", help="Objects drawn per image and step (at most).")
    ] = 16,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay.")] = 0.01,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the split, the shuffling and the prompts.")
    ] = 0,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir", help="Image-embedding store (default OUT/embeddings); share it between runs."
        ),
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Fine-tune a SAM-family model: the image encoder frozen (run once per image, embeddings stored on disk),
    the prompt encoder and mask decoder (or LoRA adapters on the decoder) trained with SAM's recipe.

    Writes OUT/best/ (the best model by validation mIoU, a transformers folder every robosam command loads),
    OUT/metrics.json, OUT/report.md, OUT/loss_curve.png and OUT/state/ (to resume: run the same command).

    Example: robosam finetune --data parts/coco.json --model sam2.1-hiera-tiny --epochs 20 --out ft/

    Then: robosam segment part.jpg --model ft/best --point 320,240 --out seg/
    """
    from robosam.finetune.config import FinetuneConfig

    config = FinetuneConfig(
        data=str(data), model=model, out=str(out), val=None if val is None else str(val), val_split=val_split,
        epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size, lora=lora, prompts=prompts,
        clicks=clicks, max_objects=max_objects, device=device, seed=seed,
        cache_dir=None if cache_dir is None else str(cache_dir),
    )  # fmt: skip
    config.validate()
    from robosam.finetune.trainer import FinetuneEvent, Finetuner

    progress = progress_bar()
    tasks: dict[str, int] = {}

    def on_event(event: FinetuneEvent) -> None:
        if event.stage == "cache":
            if "cache" not in tasks:
                tasks["cache"] = progress.add_task("embedding images", total=event.total)
            progress.update(tasks["cache"], completed=event.done)
        elif event.stage == "baseline":
            console.print("validating the model as loaded")
        elif event.stage == "step":
            if "train" not in tasks:
                tasks["train"] = progress.add_task("training", total=event.total)
            loss = "" if event.loss is None else f"  loss {event.loss:.4f}"
            progress.update(
                tasks["train"], completed=event.done, description=f"epoch {event.epoch}/{event.epochs}{loss}"
            )
        elif event.stage == "epoch":
            mark = "  (best, saved)" if event.best else ""
            console.print(
                f"epoch {event.epoch}/{event.epochs}  train loss {event.loss:.4f}  val mIoU {event.val_miou:.4f}{mark}"
            )

    trainer = Finetuner(config, on_event)
    with progress:
        result = trainer.run()
    cache = result.metrics["cache"]
    console.print(
        f"validation mIoU {result.before_miou:.4f} before, {result.best_miou:.4f} best (epoch {result.best_epoch}); "
        f"{cache['encoded']} image(s) encoded, {cache['reused']} read from the store"
    )
    console.print(f"wrote best/, metrics.json, report.md and loss_curve.png to {out}")
