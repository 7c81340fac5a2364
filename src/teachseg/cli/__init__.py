"""Command-line interface: a thin Typer layer over the package.

User errors (:class:`teachseg.errors.TeachsegError`) print as one line on stderr with a non-zero exit code;
``--debug`` anywhere on the command line shows the full traceback instead.
"""

from __future__ import annotations

import sys

from teachseg.cli import data as _data  # noqa: F401  (registers commands)
from teachseg.cli import predict as _predict  # noqa: F401
from teachseg.cli import report as _report  # noqa: F401
from teachseg.cli import selftrain as _selftrain  # noqa: F401
from teachseg.cli import train as _train  # noqa: F401
from teachseg.cli._app import app, console

__all__ = ["app", "main", "run"]


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name) and return the exit code."""
    import click
    import typer

    from teachseg.errors import TeachsegError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="teachseg", standalone_mode=False)
    except TeachsegError as exc:
        if debug:
            raise
        console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        console.print("interrupted")
        return 130
    except Exception as exc:
        if debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else ""
        console.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {msg} (run again with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run())
