"""How ``predict`` reports progress: a small callback protocol, so the inference package draws nothing itself.

The CLI turns these calls into a rich progress bar (:mod:`teachseg.cli.predict`); library callers pass
nothing, or their own object with the same methods.
"""

from __future__ import annotations

from typing import Protocol


class PredictProgress(Protocol):
    """Callbacks of a ``predict`` run, in the order they come."""

    def on_start(self, total: int) -> None:
        """The run is about to predict ``total`` inputs."""

    def on_item(self, index: int, name: str) -> None:
        """Input ``index`` (0-based), whose outputs are named ``name``, starts."""

    def on_tiles(self, total: int) -> None:
        """The current input will be predicted as ``total`` tiles."""

    def on_advance(self, n: int) -> None:
        """``n`` more tiles of the current input were predicted."""

    def on_done(self, done: int, name: str) -> None:
        """``done`` inputs are finished, the latest ``name`` (a Ray run, which predicts several at once)."""

    def on_finish(self) -> None:
        """Every input was handled."""


class NoProgress:
    """Reports nothing: the default for library callers and tests."""

    def on_start(self, total: int) -> None:
        pass

    def on_item(self, index: int, name: str) -> None:
        pass

    def on_tiles(self, total: int) -> None:
        pass

    def on_advance(self, n: int) -> None:
        pass

    def on_done(self, done: int, name: str) -> None:
        pass

    def on_finish(self) -> None:
        pass
