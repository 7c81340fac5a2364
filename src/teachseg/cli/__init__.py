"""Command-line interface: a thin Typer layer over the package.

User errors (:class:`teachseg.errors.TeachsegError`) print as one line on stderr with a non-zero exit code;
``--debug`` anywhere on the command line shows the full traceback instead. ``--log-format
auto|rich|plain|json`` anywhere on the command line (or ``TEACHSEG_LOG_FORMAT``) chooses how output looks:
rich on a terminal, full unwrapped lines elsewhere (``auto``), or one JSON object per line.
"""

from __future__ import annotations

import os
import sys

from rich.markup import escape  # error texts are not markup: "[openvino]", "slide[1].svs" stay as they are

from teachseg.cli import data as _data  # noqa: F401  (registers commands)
from teachseg.cli import predict as _predict  # noqa: F401
from teachseg.cli import pretrain as _pretrain  # noqa: F401
from teachseg.cli import report as _report  # noqa: F401
from teachseg.cli import selftrain as _selftrain  # noqa: F401
from teachseg.cli import train as _train  # noqa: F401
from teachseg.cli._app import app, console, out
from teachseg.cli._logs import set_log_format

__all__ = ["app", "main", "run"]


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name) and return the exit code."""
    import click
    import typer

    from teachseg.errors import TeachsegError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    saved_env = os.environ.get("TEACHSEG_LOG_FORMAT")
    try:
        args, log_format = _pop_log_format(args)
        set_log_format(log_format or saved_env or "auto", console, out)
    except TeachsegError as exc:
        console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        return exc.exit_code
    if log_format:
        os.environ["TEACHSEG_LOG_FORMAT"] = log_format  # seen by progress bars and child processes
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="teachseg", standalone_mode=False)
    except TeachsegError as exc:
        if debug:
            raise
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
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
        from teachseg.io import disk_full_error, is_disk_full

        # a write outside teachseg.io.atomic_path (work files, logs) found the disk full
        if is_disk_full(exc):
            filename = getattr(exc, "filename", None)
            full = disk_full_error(filename, "writing this file" if filename else "writing the outputs")
            console.print(
                f"[bold red]error:[/] {escape(str(full))}", highlight=False, markup=True, soft_wrap=True
            )
            return full.exit_code
        msg = str(exc).splitlines()[0] if str(exc) else ""
        console.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(msg)} (run again with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    finally:
        if saved_env is None:
            os.environ.pop("TEACHSEG_LOG_FORMAT", None)
        else:
            os.environ["TEACHSEG_LOG_FORMAT"] = saved_env
    return rv if isinstance(rv, int) else 0


def _pop_log_format(args: list[str]) -> tuple[list[str], str | None]:
    """Remove ``--log-format X`` / ``--log-format=X`` from anywhere on the command line (a global option)."""
    kept: list[str] = []
    fmt: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            kept.extend(args[i:])
            break
        if arg == "--log-format":
            if i + 1 >= len(args):
                from teachseg.errors import ConfigError

                raise ConfigError("--log-format needs a value", fix="use --log-format auto|rich|plain|json")
            fmt = args[i + 1]
            i += 2
            continue
        if arg.startswith("--log-format="):
            fmt = arg.split("=", 1)[1]
        else:
            kept.append(arg)
        i += 1
    return kept, fmt


def main() -> None:
    """Console-script entry point: run the CLI on ``sys.argv`` and exit with its status."""
    sys.exit(run())
