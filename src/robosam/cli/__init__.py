"""The ``robosam`` command line: one module per command, each parsing and validating its arguments and
calling the library. A user's mistake is one line on stderr and exit code 2."""

from __future__ import annotations

import sys

import typer

from robosam.cli import (
    auto,
    bag,
    bench,
    convert,
    eval,
    export,
    finetune,
    grasp,
    ground,
    label,
    models,
    segment,
    serve,
    track,
)
from robosam.errors import InputError

app = typer.Typer(
    name="robosam",
    help="Segment Anything for robots. Run `robosam COMMAND --help` for an example of each command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("models")(models.models)
app.command("segment")(segment.segment)
app.command("auto")(auto.auto)
app.command("grasp")(grasp.grasp)
app.command("ground")(ground.ground)
app.command("track")(track.track)
app.command("eval")(eval.eval_command)
app.command("convert")(convert.convert)
app.command("export")(export.export)
app.command("bench")(bench.bench)
app.command("finetune")(finetune.finetune)
app.command("serve")(serve.serve)
app.command("bag")(bag.bag)
app.command("label")(label.label)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app, turning ``InputError`` into one line and exit code 2."""
    try:
        app(args=argv, prog_name="robosam")
    except InputError as error:
        print(f"robosam: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
