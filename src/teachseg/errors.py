"""User-facing errors: one clear line naming the file, what is wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class TeachsegError(Exception):
    """An error the user can fix. The CLI prints it as one line and exits non-zero (no traceback)."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        self.path = Path(path) if path is not None else None
        self.fix = fix
        parts = []
        if path is not None:
            parts.append(f"{path}:")
        parts.append(message.rstrip("."))
        text = " ".join(parts)
        if fix:
            text += f". Fix: {fix.rstrip('.')}"
        # one line whatever the message quotes (a config key or file name may hold a newline)
        text = text.replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(text + ".")


class DataError(TeachsegError):
    """A problem with input images, masks or folders."""


class ConfigError(TeachsegError):
    """A problem with a configuration file or option."""


class ModelError(TeachsegError):
    """A problem with a model name, weights or a saved model folder."""


class OutputError(TeachsegError):
    """An output location that cannot be written or would overwrite earlier work."""
