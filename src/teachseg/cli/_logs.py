"""Consoles that stay readable wherever the output goes.

* On a terminal: rich as usual (colours, tables with boxes, progress bars).
* Not on a terminal (CI, ``nohup``, ``> run.log``): plain full lines, never wrapped at 80 columns, tables as
  one line per row with their cells separated by two spaces, no boxes and no colour codes.
* ``--log-format json`` (or ``TEACHSEG_LOG_FORMAT=json``): one JSON object per line,
  ``{"time": ..., "level": ..., "stream": ..., "message": ...}``, for pipelines.
"""

from __future__ import annotations

import io
import json
import os
import time
from typing import Any

from rich.console import Console
from rich.errors import MarkupError
from rich.table import Table
from rich.text import Text

LOG_FORMATS = ("auto", "rich", "plain", "json")
_WIDE = 10_000


class LogConsole(Console):
    """A :class:`rich.console.Console` whose :meth:`print` follows :attr:`log_format`.

    ``auto`` is ``rich`` on a terminal and ``plain`` elsewhere.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log_format = os.environ.get("TEACHSEG_LOG_FORMAT", "auto").lower()
        if self.log_format not in LOG_FORMATS:
            self.log_format = "auto"

    @property
    def mode(self) -> str:
        """The format in effect: ``rich``, ``plain`` or ``json``."""
        if self.log_format == "auto":
            return "rich" if self.is_terminal else "plain"
        return self.log_format

    def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Print as rich markup, or as plain/JSON log lines when the log format asks for it."""
        mode = self.mode
        if mode == "rich":
            super().print(*objects, **kwargs)
            return
        if self.quiet:
            return
        markup = kwargs.get("markup")
        markup = self._markup if markup is None else markup
        sep, end = kwargs.get("sep", " "), kwargs.get("end", "\n")
        text = sep.join(to_plain(obj, markup) for obj in objects)
        if mode == "json":
            stream = "stderr" if self.stderr else "stdout"
            lines = [line for line in text.splitlines() if line.strip()]
            payload = "".join(json_line(line, stream) + "\n" for line in lines)
        else:
            payload = text + end
        self.file.write(payload)
        self.file.flush()


def to_plain(obj: Any, markup: bool = True) -> str:
    """Plain text of what rich would print: markup removed, tables as rows, never wrapped."""
    if isinstance(obj, str):
        if not markup:
            return obj
        try:
            return Text.from_markup(obj).plain
        except MarkupError:
            return obj
    if isinstance(obj, Text):
        return obj.plain
    if isinstance(obj, Table):
        return table_lines(obj)
    buf = io.StringIO()
    Console(file=buf, width=_WIDE, color_system=None, soft_wrap=True).print(obj)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines())


def table_lines(table: Table) -> str:
    """A rich table as plain lines: title, header, then one line per row (cells separated by two spaces)."""
    lines: list[str] = []
    if table.title is not None:
        lines.append(to_plain(table.title))
    columns = table.columns
    if table.show_header and any(to_plain(c.header) for c in columns):
        lines.append("  ".join(to_plain(c.header) for c in columns).rstrip())
    cells = [[to_plain(cell) for cell in c.cells] for c in columns]
    for row in zip(*cells, strict=False):
        lines.append("  ".join(" ".join(cell.split()) for cell in row).rstrip())
    return "\n".join(lines)


def json_line(message: str, stream: str = "stdout") -> str:
    """One JSON log record; the level is read from the message's ``error:``/``warning:`` prefix."""
    head = message.lstrip().split(":", 1)[0].lower()
    level = head if head in ("error", "warning", "note") else "info"
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "level": level,
        "stream": stream,
        "message": message,
    }
    return json.dumps(record, ensure_ascii=False)


def set_log_format(fmt: str, *consoles: LogConsole) -> None:
    """Switch ``consoles`` to ``fmt`` (one of :data:`LOG_FORMATS`)."""
    fmt = fmt.lower()
    if fmt not in LOG_FORMATS:
        from teachseg.errors import ConfigError

        raise ConfigError(
            f"unknown log format {fmt!r}", fix=f"use --log-format with one of {', '.join(LOG_FORMATS)}"
        )
    for c in consoles:
        c.log_format = fmt
