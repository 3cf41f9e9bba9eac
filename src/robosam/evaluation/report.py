"""Write evaluation results: ``metrics.json`` (every figure), ``report.md`` (tables), PNG plots.

Plots (each only when there is something to draw): ``miou_vs_clicks.png`` (mean IoU after each click),
``per_sequence.png`` (J&F or mIoU per sequence, bars), ``latency.png`` (median and p90 per stage, ms).
All files are written to a temporary name and renamed, so readers never see half a file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.io import atomic_write, write_text_atomic


def _clean(value: Any) -> Any:
    """JSON-ready copy: numpy scalars to Python, NaN/inf to None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def prepare_out_dir(out: str | os.PathLike) -> Path:
    """Create ``out`` (and parents); an existing non-folder there is an InputError."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError("out", "a folder path (created if missing)", str(path))
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(data: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """``data`` as indented JSON at ``path`` (atomic)."""
    return write_text_atomic(json.dumps(_clean(data), indent=2) + "\n", path)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4f}"
    return str(value)


def markdown_table(rows: list[Mapping[str, Any]], columns: list[str]) -> str:
    """A GitHub Markdown table of ``rows`` restricted to ``columns`` (floats at 4 decimals)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(metrics: Mapping[str, Any], plots: list[str]) -> str:
    """The Markdown report of a ``metrics.json`` dict (from the DAVIS scorer or an image/video run)."""
    title = metrics.get("title", "robosam evaluation")
    parts = [f"# {title}", ""]
    if "settings" in metrics:
        settings = ", ".join(f"{k}={v}" for k, v in metrics["settings"].items())
        parts += [f"Settings: {settings}", ""]
    if "global" in metrics:
        parts += ["## Global (DAVIS)", "", markdown_table([metrics["global"]], list(metrics["global"])), ""]
    if "per_object" in metrics and isinstance(metrics["per_object"], Mapping):
        rows = [{"object": name, **values} for name, values in metrics["per_object"].items()]
        columns = ["object", "J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
        parts += ["## Per object", "", markdown_table(rows, columns), ""]
    summary = metrics.get("summary")
    if summary:
        flat = {k: v for k, v in summary.items() if not isinstance(v, Mapping)}
        parts += ["## Summary", "", markdown_table([flat], list(flat)), ""]
        curve = summary.get("mIoU@k")
        if curve:
            shown = [k for k in ("1", "2", "3", "5", "10", "15", "20") if k in curve]
            parts += ["## mIoU after k clicks", "", markdown_table([curve], shown), ""]
    per_sequence = metrics.get("per_sequence") or {}
    if per_sequence:
        column = "J&F-Mean" if "global" in metrics else "mIoU"
        rows = [{"sequence": k, column: v} for k, v in per_sequence.items()]
        parts += ["## Per sequence", "", markdown_table(rows, ["sequence", column]), ""]
    latency = metrics.get("latency")
    if latency:
        rows = [{"stage": stage, **values} for stage, values in latency.items()]
        parts += [
            "## Latency",
            "",
            markdown_table(rows, ["stage", "count", "median_ms", "mean_ms", "p90_ms"]),
            "",
        ]
    if plots:
        parts += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(parts)


def _save_figure(figure: Any, path: Path) -> Path:
    with atomic_write(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def plot_miou_curve(curve: np.ndarray, path: Path, label: str = "") -> Path:
    """Mean IoU (y, 0..1) against clicks 1..K (x); curve: (K,) float."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(6, 4))
    clicks = np.arange(1, len(curve) + 1)
    axes.plot(clicks, curve, marker="o", label=label or None)
    for level in (0.85, 0.90):
        axes.axhline(level, color="grey", linestyle=":", linewidth=1)
    axes.set(
        xlabel="clicks", ylabel="mean IoU", ylim=(0, 1), xlim=(1, max(len(curve), 2)), title="mIoU vs clicks"
    )
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    if label:
        axes.legend()
    try:
        return _save_figure(figure, path)
    finally:
        plt.close(figure)


def plot_bars(values: Mapping[str, float], path: Path, ylabel: str, title: str) -> Path:
    """Horizontal bars, one per name (e.g. J&F per sequence), values in 0..1."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(values)
    figure, axes = plt.subplots(figsize=(6, 0.35 * len(names) + 1.2))
    axes.barh(names, [values[n] for n in names], color="tab:blue")
    axes.invert_yaxis()
    axes.set(xlim=(0, 1), xlabel=ylabel, title=title)
    axes.grid(axis="x", alpha=0.3)
    try:
        return _save_figure(figure, path)
    finally:
        plt.close(figure)


def plot_latency(latency: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """Median and p90 milliseconds per stage (grouped bars)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    stages = list(latency)
    x = np.arange(len(stages))
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.bar(x - 0.2, [latency[s]["median_ms"] for s in stages], width=0.4, label="median")
    axes.bar(x + 0.2, [latency[s]["p90_ms"] for s in stages], width=0.4, label="p90")
    axes.set_xticks(x, stages)
    axes.set(ylabel="ms", title="latency per stage")
    axes.legend()
    try:
        return _save_figure(figure, path)
    finally:
        plt.close(figure)


def write_report(
    metrics: Mapping[str, Any], out: str | os.PathLike, *, plots: bool = True
) -> dict[str, Path]:
    """Write ``metrics.json``, the plots that apply, and ``report.md`` into ``out``; returns name -> path."""
    out_dir = prepare_out_dir(out)
    written: dict[str, Path] = {"metrics": write_json(metrics, out_dir / "metrics.json")}
    figures: list[Path] = []
    if plots:
        curve = (metrics.get("summary") or {}).get("mIoU@k")
        if curve:
            figures.append(
                plot_miou_curve(np.array(list(curve.values()), float), out_dir / "miou_vs_clicks.png")
            )
        per_sequence = metrics.get("per_sequence") or {}
        if per_sequence:
            is_davis = "global" in metrics
            figures.append(
                plot_bars(
                    per_sequence,
                    out_dir / "per_sequence.png",
                    "J&F-Mean" if is_davis else "mIoU",
                    "J&F per sequence" if is_davis else "mIoU per sequence",
                )
            )
        if metrics.get("latency"):
            figures.append(plot_latency(metrics["latency"], out_dir / "latency.png"))
    for figure in figures:
        written[figure.stem] = figure
    written["report"] = write_text_atomic(
        render_markdown(metrics, [str(f) for f in figures]), out_dir / "report.md"
    )
    return written
