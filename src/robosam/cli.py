"""The ``robosam`` command line: parses and validates arguments, calls the library, prints a summary.

Every command writes machine-readable output under ``--out``; a user's mistake is one line on stderr
and exit code 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from robosam.errors import InputError

app = typer.Typer(
    name="robosam",
    help="Segment Anything for robots. Run `robosam COMMAND --help` for an example of each command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app, turning ``InputError`` into one line and exit code 2."""
    try:
        app(args=argv, prog_name="robosam")
    except InputError as error:
        print(f"robosam: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
