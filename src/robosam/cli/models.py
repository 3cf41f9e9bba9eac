"""`robosam models`: the presets."""

from __future__ import annotations


def models() -> None:
    """List the model presets: name, family, hub id, input size and parameter count.

    Example: robosam models
    """
    from robosam.models import DEFAULT_PRESET, PRESETS

    rows = [("name", "family", "input", "params (M)", "hub id", "note")]
    rows += [
        (p.name, p.family, str(p.input_size), f"{p.params_m:.1f}", p.hub_id, p.note) for p in PRESETS.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"default: {DEFAULT_PRESET}; any hub id, model folder or Meta checkpoint (.pt/.pth) also works")
