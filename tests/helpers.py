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


def require_peer(module: str):  # noqa: ANN201 - the imported module
    """Import a test peer (Meta's ``segment_anything``, ``sam2``, ...). Where it is missing the test is skipped
    on a developer's machine but fails in CI (``CI=true``), so a broken install never passes as skips."""
    import importlib
    import os

    import pytest

    try:
        return importlib.import_module(module)
    except ImportError as error:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"test peer {module!r} is missing in CI: {error}")
        pytest.skip(f"test peer {module!r} not installed")
