"""CLI commands (train)."""

from __future__ import annotations

from teachseg.cli._app import app  # noqa: F401
