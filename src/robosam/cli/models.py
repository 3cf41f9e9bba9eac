"""`robosam models`: the presets, by kind."""

from __future__ import annotations

from typing import Annotated

import typer

from robosam.errors import InputError


def models(
    kind: Annotated[
        str | None,
        typer.Option("--kind", "-k", help="Only presets of this kind: segmenter, tracker or detector."),
    ] = None,
) -> None:
    """List the model presets: name, kinds, family, input size, parameter count and hub id.

    Example: robosam models --kind tracker
    """
    from robosam.models import DEFAULT_PRESET, KINDS, PRESETS, presets_of_kind

    if kind is not None and kind not in KINDS:
        raise InputError("--kind", f"one of {', '.join(KINDS)}", kind)
    presets = PRESETS if kind is None else presets_of_kind(kind)
    rows = [("name", "kind", "family", "input", "params (M)", "hub id", "note")]
    rows += [
        (p.name, "+".join(p.kinds), p.family, str(p.input_size), f"{p.params_m:.1f}", p.hub_id, p.note)
        for p in presets.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"default: {DEFAULT_PRESET}; any hub id, model folder or Meta checkpoint (.pt/.pth) also works")
