"""The model a training run builds, resolved from the config once: :class:`ModelSpec`.

Training code takes a spec rather than optional names that mean "take it from the config", so a Teacher, a
Noisy Student, or a future online method (Mean Teacher, FixMatch) states exactly what it trains.

Example:
    >>> from teachseg.config import Config
    >>> ModelSpec.teacher(Config())
    ModelSpec(arch='linknet', encoder='resnet34', encoder_weights=None, dropout=0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from teachseg.config import Config


@dataclass(frozen=True)
class ModelSpec:
    """Architecture, encoder, initial encoder weights and head dropout of one model, all resolved."""

    arch: str
    encoder: str
    #: ``"imagenet"``, a local weights file, or None (random initialisation)
    encoder_weights: str | None = None
    #: channel dropout before the segmentation head while training (see :func:`teachseg.models.build_model`)
    dropout: float = 0.0

    @classmethod
    def teacher(cls, cfg: Config) -> ModelSpec:
        """The model ``cfg.model`` describes (a Teacher, or any supervised run)."""
        m = cfg.model
        return cls(str(m.arch), m.encoder, m.encoder_weights, m.decoder_dropout)

    @classmethod
    def student(cls, cfg: Config) -> ModelSpec:
        """The Student of ``cfg.selftrain.student``: the Teacher's model unless it names its own.

        Its encoder weights are the student's own only when it names an architecture or encoder (otherwise
        the Teacher's ``model.encoder_weights``); its dropout is the larger of ``model.decoder_dropout`` and
        ``selftrain.student.dropout``.
        """
        s, m = cfg.selftrain.student, cfg.model
        own = bool(s.arch or s.encoder)
        return cls(
            str(s.arch or m.arch),
            s.encoder or m.encoder,
            s.encoder_weights if own else m.encoder_weights,
            max(s.dropout, m.decoder_dropout),
        )

    @property
    def name(self) -> str:
        """``arch-encoder``, as logs and tables show a model."""
        return f"{self.arch}-{self.encoder}"

    def build(self) -> nn.Module:
        """A fresh smp model of this spec (initial weights as ``encoder_weights`` says)."""
        from teachseg.models import build_model

        return build_model(self.arch, self.encoder, self.encoder_weights, dropout=self.dropout)
