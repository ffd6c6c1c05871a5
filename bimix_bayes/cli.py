"""The ``bimix`` command line: a thin layer over the Python API.

Every command takes its inputs from files, calls one API function and writes its outputs atomically.
Bad input raises :class:`~bimix_bayes.errors.BimixInputError`, which :func:`main` prints as one line on
stderr with exit status 2 (no traceback).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bimix_bayes.errors import BimixInputError

app = typer.Typer(
    name="bimix",
    help="Bayesian data-mixing laws for LLM pretraining: fit, predict, optimise, plan, train.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()


@app.command()
def validate(
    observations: Annotated[Path, typer.Argument(help="Tidy observations CSV.")],
) -> None:
    """Check an observations CSV and summarise it.

    Example: bimix validate obs.csv
    """
    from bimix_bayes.observations import Observations

    obs = Observations.read_csv(observations)
    out.print(
        f"{observations}: OK: {len(obs.runs)} runs, {len(obs.domains)} domains "
        f"({len(obs.evaluated_domains)} evaluated), {len(obs.steps)} steps, {len(obs)} rows"
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bimix`` script."""
    try:
        app(args=argv, prog_name="bimix")
    except BimixInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
