"""`byteor-agent`: the reference agent's command line (enroll, run and capture join with A1)."""

from __future__ import annotations

import typer

from byteor_cloud import __version__

app = typer.Typer(no_args_is_help=True, help="ByteOr reference agent.", add_completion=False)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.callback()
def _root() -> None:
    """ByteOr reference agent."""


def main() -> None:
    """Console-script entry point."""
    app()
