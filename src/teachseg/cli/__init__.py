"""Command-line interface: a thin Typer layer over the package.

User errors (:class:`teachseg.errors.TeachsegError`) print as one line on stderr with a non-zero exit code;
``--debug`` anywhere on the command line shows the full traceback instead. A mistyped command or option is a
usage error: the usage line, what is wrong (with click's "did you mean"), the valid commands or options, exit
status 2. ``--log-format auto|rich|plain|json`` anywhere on the command line (or ``TEACHSEG_LOG_FORMAT``)
chooses how output looks: rich on a terminal, full unwrapped lines elsewhere (``auto``), or one JSON object
per line. ``--verbose`` (or ``--debug``) anywhere also shows Lightning's own log lines.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.markup import escape  # error texts are not markup: "[openvino]", "slide[1].svs" stay as they are

from teachseg.cli import data as _data  # noqa: F401  (registers commands)
from teachseg.cli import predict as _predict  # noqa: F401
from teachseg.cli import pretrain as _pretrain  # noqa: F401
from teachseg.cli import report as _report  # noqa: F401
from teachseg.cli import selftrain as _selftrain  # noqa: F401
from teachseg.cli import suggest as _suggest  # noqa: F401
from teachseg.cli import train as _train  # noqa: F401
from teachseg.cli import view as _view  # noqa: F401
from teachseg.cli._app import app, console, out
from teachseg.cli._logs import set_log_format

__all__ = ["app", "main", "run"]


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name) and return the exit code."""
    import typer

    from teachseg.errors import TeachsegError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    verbose = debug or "--verbose" in args
    args = [a for a in args if a not in ("--debug", "--verbose")]
    saved_env = os.environ.get("TEACHSEG_LOG_FORMAT")
    saved_verbose = os.environ.get("TEACHSEG_VERBOSE")
    try:
        args, log_format = _pop_log_format(args)
        set_log_format(log_format or saved_env or "auto", console, out)
    except TeachsegError as exc:
        console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        return exc.exit_code
    if log_format:
        os.environ["TEACHSEG_LOG_FORMAT"] = log_format  # seen by progress bars and child processes
    if verbose:  # seen by the Trainer (teachseg.training.fit) and child processes
        os.environ["TEACHSEG_VERBOSE"] = "1"
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="teachseg", standalone_mode=False)
    except TeachsegError as exc:
        if debug:
            raise
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        console.print("interrupted")
        return 130
    except Exception as exc:
        # Typer's parser errors (click's, or the copy of click that Typer >= 0.20 ships) are the user's
        if _is_a(exc, "NoArgsIsHelpError"):  # the help was shown
            message = str(getattr(exc, "format_message", lambda: "")())
            if message.strip():
                console.print(message, highlight=False, markup=False, soft_wrap=True)
            return int(getattr(exc, "exit_code", 2))
        if _is_a(exc, "UsageError"):
            console.print(usage_message(exc), highlight=False, markup=False, soft_wrap=True)
            return int(getattr(exc, "exit_code", 2))
        if _is_a(exc, "ClickException"):  # e.g. a file option that cannot be opened
            message = exc.format_message()  # type: ignore[attr-defined]
            console.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
            return int(getattr(exc, "exit_code", 1))
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
        for name, saved in (("TEACHSEG_LOG_FORMAT", saved_env), ("TEACHSEG_VERBOSE", saved_verbose)):
            if saved is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = saved
    return rv if isinstance(rv, int) else 0


def _is_a(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is click's exception class ``name`` (from click, or from Typer's copy of it)."""
    return any(
        cls.__name__ == name and cls.__module__.split(".")[0] in ("click", "typer")
        for cls in type(exc).__mro__
    )


def usage_message(exc: Exception) -> str:
    """A usage error as the person needs it: the usage line, where to find help, what is wrong (with click's
    "did you mean"), and the valid commands (a group's error) or options (a mistyped option)."""
    ctx: Any = getattr(exc, "ctx", None)
    message = str(exc.format_message()) if hasattr(exc, "format_message") else str(exc)
    possibilities = sorted(getattr(exc, "possibilities", None) or [])
    if _is_a(exc, "NoSuchOption") and possibilities:  # one wording whichever copy of click raised it
        message = f"{exc.message}. Did you mean {' or '.join(possibilities)}?"  # type: ignore[attr-defined]
    lines: list[str] = []
    if ctx is not None:
        lines += [ctx.get_usage(), f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.", ""]
    lines.append(f"error: {message}")
    command = getattr(ctx, "command", None)
    if command is not None and hasattr(command, "list_commands"):
        names = [
            n for n in command.list_commands(ctx) if not getattr(command.get_command(ctx, n), "hidden", False)
        ]
        lines.append(f"commands: {', '.join(names)}")
    elif command is not None and (_is_a(exc, "NoSuchOption") or _is_a(exc, "BadOptionUsage")):
        options = [
            "/".join([max(p.opts, key=len), *p.secondary_opts])
            for p in command.get_params(ctx)
            if getattr(p, "param_type_name", "") == "option" and not getattr(p, "hidden", False)
        ]
        lines.append(f"options of {ctx.command_path}: {', '.join(options)}")
    return "\n".join(lines)


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
