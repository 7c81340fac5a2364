"""The self-supervised objectives, in a registry: each one an ``nn.Module`` over an smp encoder, built from
lightly's heads, losses and momentum utilities.

* ``simclr`` (Chen et al. 2020): the global average of the deepest feature map, lightly's SimCLR projection
  head and NT-Xent loss; the other images of the batch are the negatives.
* ``densecl`` (Wang et al. 2021, arXiv 2011.09157): a global term as MoCo's plus a dense term over every
  location of the deepest feature map, each location of one view matched to its most similar location of the
  other (lightly's ``select_most_similar``); keys from a momentum copy of the encoder
  (``update_momentum`` with a cosine schedule), negatives from the batch and optionally a memory bank. A
  dense objective suits segmentation, which reads features per location.

An objective maps two batches of views to a loss; :meth:`Objective.before_step` runs before each optimiser
step (momentum updates) and :meth:`Objective.extra_state` carries what the state dict does not (lightly's
memory banks are non-persistent buffers), so a resumed pretraining continues exactly.

Add one with :func:`register_objective`::

    @register_objective("byol")
    class BYOL(Objective): ...
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

#: name -> objective class
OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    """Class decorator adding an objective to :data:`OBJECTIVES` (a name registered twice warns)."""

    def add(cls: type[Objective]) -> type[Objective]:
        if name in OBJECTIVES and OBJECTIVES[name] is not cls:
            warnings.warn(
                f"pretraining objective {name!r} registered twice; the later one wins", stacklevel=2
            )
        cls.name = name
        OBJECTIVES[name] = cls
        return cls

    return add


def build_objective(name: str, encoder: nn.Module, settings: dict[str, Any], total_steps: int) -> Objective:
    """The objective ``name`` over ``encoder`` (``settings``: the resolved ``pretrain`` section)."""
    from teachseg.errors import ConfigError

    if name not in OBJECTIVES:
        raise ConfigError(
            f"unknown pretraining objective {name!r}",
            fix=f"set pretrain.objective to one of {', '.join(OBJECTIVES)}",
        )
    return OBJECTIVES[name](encoder, settings, total_steps)


def deepest(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The deepest feature map (B, C, h, w) of an smp encoder, which returns one map per stage."""
    return encoder(x)[-1]


class Objective(nn.Module):
    """A self-supervised loss over ``encoder``, the module whose weights pretraining exports."""

    name: ClassVar[str] = ""
    #: the objective reads features per location: the deepest map must be larger than 1 x 1
    dense: ClassVar[bool] = False

    def __init__(self, encoder: nn.Module, settings: dict[str, Any], total_steps: int):
        super().__init__()
        self.encoder = encoder
        self.settings = dict(settings)
        self.total_steps = max(int(total_steps), 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def before_step(self, step: int) -> None:
        """Called before optimiser step ``step`` (0-based), e.g. to move a momentum encoder."""

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors a checkpoint needs beyond the state dict: the memory banks of lightly's losses."""
        from lightly.models.modules.memory_bank import MemoryBankModule

        out: dict[str, torch.Tensor] = {}
        for name, mod in self.named_modules():
            if isinstance(mod, MemoryBankModule) and mod.size != (0,):
                out[f"{name}.bank"] = mod.bank.detach().cpu().clone()
                out[f"{name}.bank_ptr"] = mod.bank_ptr.detach().cpu().clone()
        return out

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`extra_state` saved."""
        modules = dict(self.named_modules())
        for key, value in state.items():
            owner, attr = key.rsplit(".", 1)
            buffer = getattr(modules[owner], attr)
            buffer.copy_(value.to(buffer.device))


@register_objective("simclr")
class SimCLR(Objective):
    """SimCLR: NT-Xent over globally pooled, projected features of the two views."""

    def __init__(self, encoder: nn.Module, settings: dict[str, Any], total_steps: int):
        from lightly.loss import NTXentLoss
        from lightly.models.modules.heads import SimCLRProjectionHead

        super().__init__(encoder, settings, total_steps)
        channels = int(encoder.out_channels[-1])  # type: ignore[index]
        self.head = SimCLRProjectionHead(channels, channels, 128)
        self.criterion = NTXentLoss(temperature=float(settings["temperature"]))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(deepest(self.encoder, x).mean(dim=(2, 3)))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.criterion(self.embed(a), self.embed(b))


@register_objective("densecl")
class DenseCL(Objective):
    """DenseCL: a global and a dense contrastive term, queries from the encoder, keys from its momentum copy."""

    dense = True
    #: momentum of the key encoder at the first step; a cosine schedule takes it to 1 at the last
    MOMENTUM = 0.99

    def __init__(self, encoder: nn.Module, settings: dict[str, Any], total_steps: int):
        from lightly.loss import NTXentLoss
        from lightly.models.modules.heads import DenseCLProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        super().__init__(encoder, settings, total_steps)
        channels = int(encoder.out_channels[-1])  # type: ignore[index]
        self.head_global = DenseCLProjectionHead(channels, channels, 128)
        self.head_local = DenseCLProjectionHead(channels, channels, 128)
        self.encoder_momentum = copy.deepcopy(encoder)
        self.head_global_momentum = copy.deepcopy(self.head_global)
        self.head_local_momentum = copy.deepcopy(self.head_local)
        for module in (self.encoder_momentum, self.head_global_momentum, self.head_local_momentum):
            deactivate_requires_grad(module)
        bank = int(settings.get("memory_bank", 0))
        size: int | tuple[int, int] = (bank, 128) if bank else 0
        temperature = float(settings["temperature"])
        self.criterion_global = NTXentLoss(temperature=temperature, memory_bank_size=size)
        self.criterion_local = NTXentLoss(temperature=temperature, memory_bank_size=size)
        self.dense_weight = float(settings.get("dense_weight", 0.5))

    @staticmethod
    def embed(
        encoder: nn.Module, head_global: nn.Module, head_local: nn.Module, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features (B, h*w, C), global projection (B, D), local projections (B, h*w, D))."""
        features = deepest(encoder, x)
        pooled = head_global(features.mean(dim=(2, 3)))
        features = features.flatten(start_dim=2).permute(0, 2, 1)
        return features, pooled, head_local(features)

    def before_step(self, step: int) -> None:
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule

        m = cosine_schedule(min(step, self.total_steps), self.total_steps, self.MOMENTUM, 1.0)
        update_momentum(self.encoder, self.encoder_momentum, m=m)
        update_momentum(self.head_global, self.head_global_momentum, m=m)
        update_momentum(self.head_local, self.head_local_momentum, m=m)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from lightly.models.utils import select_most_similar

        q_features, q_global, q_local = self.embed(self.encoder, self.head_global, self.head_local, a)
        with torch.no_grad():
            k_features, k_global, k_local = self.embed(
                self.encoder_momentum, self.head_global_momentum, self.head_local_momentum, b
            )
            k_local = select_most_similar(q_features.detach(), k_features, k_local)
        loss_global = self.criterion_global(q_global, k_global)
        loss_local = self.criterion_local(q_local.flatten(end_dim=1), k_local.flatten(end_dim=1))
        return (1 - self.dense_weight) * loss_global + self.dense_weight * loss_local
