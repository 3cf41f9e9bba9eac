"""A fine-tuning run's outputs: ``metrics.json`` (every figure), ``report.md`` and ``loss_curve.png``.

The plot shows the training loss of every step and each epoch's mean against epochs, and the validation mIoU
(epoch 0 = before training) on a second axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robosam.evaluation.report import markdown_table, write_json
from robosam.io import atomic_write, write_text_atomic


def render_markdown(metrics: dict[str, Any], plot: str | None) -> str:
    """The Markdown report of a fine-tuning ``metrics`` dict."""
    settings = metrics["settings"]
    before, after = metrics["before"], metrics["after"]
    keys = [k for k in before if k.startswith("mIoU")]
    rows = [
        {"": "before", **{k: before[k] for k in keys}},
        {"": f"best (epoch {after['epoch']})", **{k: after[k] for k in keys}},
    ]
    data, cache = metrics["data"], metrics["cache"]
    parts = [
        f"# {metrics['title']}",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        "",
        f"Training: {data['train_images']} images, {data['train_objects']} objects; validation: "
        f"{data['val_images']} images, {data['val_objects']} objects. Trainable parameters: "
        f"{metrics['trainable_parameters']:,}.",
        "",
        f"Embeddings: {cache['images']} images, {cache['encoded']} encoded by this run, {cache['reused']} read "
        f"from the store ({cache['folder']}), {cache['seconds']:.1f} s.",
        "",
        "## Validation mIoU",
        "",
        markdown_table(rows, ["", *keys]),
        "",
    ]
    if after["epoch"] == 0:
        parts += ["No epoch improved on the model as loaded: `best/` holds it unchanged.", ""]
    if metrics["epochs"]:
        epoch_rows = [
            {
                "epoch": e["epoch"],
                "train loss": e["train_loss"],
                "val mIoU": e["val"]["mIoU"],
                "seconds": e["epoch_s"],
            }
            for e in metrics["epochs"]
        ]
        parts += [
            "## Epochs",
            "",
            markdown_table(epoch_rows, ["epoch", "train loss", "val mIoU", "seconds"]),
            "",
        ]
    if metrics.get("resumed_at"):
        parts += [f"Resumed after epoch(s): {', '.join(str(e) for e in metrics['resumed_at'])}.", ""]
    if plot:
        parts += [f"![loss curve]({plot})", ""]
    return "\n".join(parts)


def plot_loss_curve(metrics: dict[str, Any], path: Path) -> Path:
    """Training loss per step (thin) and per epoch (dots) against epochs; validation mIoU on the right axis."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, loss_axes = plt.subplots(figsize=(7, 4))
    steps = metrics["steps"]
    per_epoch: dict[int, int] = {}
    for record in steps:
        per_epoch[record["epoch"]] = max(per_epoch.get(record["epoch"], 0), record["step"])
    if steps:
        x = [r["epoch"] - 1 + r["step"] / per_epoch[r["epoch"]] for r in steps]
        loss_axes.plot(
            x, [r["loss"] for r in steps], color="tab:blue", alpha=0.35, linewidth=1, label="step loss"
        )
    epochs = metrics["epochs"]
    if epochs:
        loss_axes.plot(
            [e["epoch"] for e in epochs],
            [e["train_loss"] for e in epochs],
            "o-",
            color="tab:blue",
            label="epoch loss",
        )
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("training loss", color="tab:blue")
    miou_axes = loss_axes.twinx()
    miou = [metrics["before"]["mIoU"]] + [e["val"]["mIoU"] for e in epochs]
    miou_axes.plot(np.arange(len(miou)), miou, "s--", color="tab:orange", label="val mIoU")
    miou_axes.set_ylabel("validation mIoU", color="tab:orange")
    miou_axes.set_ylim(0, 1)
    figure.suptitle("robosam finetune")
    figure.tight_layout()
    with atomic_write(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path


def write_outputs(out: Path, metrics: dict[str, Any], plots: bool = True) -> dict[str, Path]:
    """Write ``metrics.json`` and ``report.md`` (and ``loss_curve.png`` with ``plots``) into ``out``."""
    files = {"metrics": write_json(metrics, out / "metrics.json")}
    plot = None
    if plots:
        files["loss_curve"] = plot_loss_curve(metrics, out / "loss_curve.png")
        plot = "loss_curve.png"
    elif (out / "loss_curve.png").is_file():
        plot = "loss_curve.png"
    files["report"] = write_text_atomic(render_markdown(metrics, plot), out / "report.md")
    return files
