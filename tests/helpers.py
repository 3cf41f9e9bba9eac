"""Small helpers shared by the test modules."""

from __future__ import annotations

from robosam.cli import main


def run_cli(args: list[str]) -> int:
    """Run ``robosam ARGS`` in this process (output goes to pytest's capture); returns the exit code."""
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
