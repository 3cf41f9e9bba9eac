"""What every command shares: option types, number parsing, the progress style and the consoles.

Commands parse and validate their arguments, call the library and print a short summary; long work shows a
``rich`` progress bar on stderr (hidden when stderr is not a terminal, so logs stay clean).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from robosam.errors import InputError

console = Console()
err_console = Console(stderr=True)

DEFAULT_MODEL = "sam2.1-hiera-tiny"

ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Preset name (see `robosam models`), hub id, model folder or .pt/.pth file."
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps.")
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]


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


def parse_points(texts: list[str] | None, argument: str = "--point") -> tuple[list[list[float]], list[int]]:
    """``["x,y", "x,y,0"]`` to points ``[[x, y], ...]`` and labels (1 positive unless a third value says 0)."""
    points, labels = [], []
    for text in texts or []:
        values = parse_numbers(text, (2, 3), argument)
        if len(values) == 3 and values[2] not in (0.0, 1.0):
            raise InputError(argument, "x,y or x,y,label with label 1 (positive) or 0 (negative)", text)
        points.append(values[:2])
        labels.append(int(values[2]) if len(values) == 3 else 1)
    return points, labels


def progress_bar(*, transient: bool = False) -> Progress:
    """The one progress style: description, bar, done/total, elapsed, remaining (for known totals)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
    )


def spinner(message: str):  # noqa: ANN201 - rich's Status context manager
    """A spinner on stderr for one step of unknown length (silent when stderr is not a terminal)."""
    return err_console.status(message, spinner="dots")
