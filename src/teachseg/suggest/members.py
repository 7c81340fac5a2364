"""Run the model (or a run's Teacher and Student) over candidates: flip views, probabilities, pooled features.

Every model is loaded from its folder (:func:`teachseg.models.load_model_folder`, safetensors only) and run
through the project's :class:`~teachseg.inference.predictor.Predictor` (torch, fp32: the ranking does not
depend on the CPU's bf16 support). An ordinary image is preprocessed exactly as in training and evaluation
(:func:`teachseg.inference.images.predict_input_size`: resized to the model's square input, normalised); a
slide region is already at the model's resolution and is predicted at its own size. Each member is one model
on one view (the image as it is, then each flip of ``ScoreSettings.flips``), flipped back.

The features for diversity are the *first* model's (the run's final model): the mean over the image of its
encoder's deepest feature map, on the image as it is, caught by a forward hook on ``model.encoder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import ModelError

#: axes of a (N, C, H, W) batch flipped by each view (None: as it is)
_VIEW_AXES = {None: None, "h": 3, "v": 2}


@dataclass
class MemberOutput:
    """One batch through every member: probabilities, which model made each, and pooled features."""

    probs: np.ndarray  #: (N, M, H, W) float32, member order: model 0's views, model 1's views, ...
    models: np.ndarray  #: (M,) model index of each member
    features: np.ndarray  #: (N, C) float32 pooled bottleneck features of model 0


class Members:
    """The models of a ranking, loaded once.

    Args:
        folders: model folders; the first is the run's final model (features, image size).
        flips: flip views besides the image as it is (see :data:`teachseg.suggest.scoring.FLIPS`).
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    def __init__(self, folders: Sequence[Path], flips: Sequence[str] = ("h", "v"), device: str = "cpu"):
        import torch

        from teachseg.inference.images import make_predictor
        from teachseg.inference.predictor import resolve_device
        from teachseg.models import load_model_folder

        if not folders:
            raise ModelError("no model folder to rank with")
        dev = resolve_device(device)
        self.folders = [Path(f) for f in folders]
        loaded = [load_model_folder(f, map_location=dev) for f in self.folders]
        self.metas = [meta for _, meta in loaded]
        for folder, meta in zip(self.folders, self.metas, strict=True):
            if meta.in_channels != 3 or meta.classes != 1:
                raise ModelError(
                    f"the model takes {meta.in_channels} channel(s) and predicts {meta.classes} class(es); "
                    "suggest ranks RGB images for one tumour class",
                    path=folder,
                    fix="give a model folder trained by teachseg on RGB images",
                )
        self.predictors = [make_predictor(model, meta, precision="fp32") for model, meta in loaded]
        self.views: list[str | None] = [None, *flips]
        self._pooled: list[Any] = []
        encoder = getattr(self.predictors[0].model, "encoder", None)
        if encoder is None:
            raise ModelError("the model has no encoder to take features from", path=self.folders[0])

        def keep(module: Any, args: Any, output: Any) -> None:
            deepest = output[-1] if isinstance(output, list | tuple) else output
            self._pooled.append(deepest.detach().float().mean(dim=(2, 3)).cpu().numpy())

        encoder.register_forward_hook(keep)
        self._torch = torch

    @property
    def meta(self) -> Any:
        """The final model's :class:`~teachseg.models.ModelMeta`."""
        return self.metas[0]

    @property
    def image_size(self) -> int:
        """The final model's square input size."""
        return int(self.metas[0].image_size)

    def normalised(self, images: Sequence[np.ndarray], index: int, resize: bool) -> np.ndarray:
        """(N, 3, S, S) float32 input of model ``index``: resized as in training, or as it is (slide regions)."""
        from teachseg.data.transforms import Normalise, to_float_image
        from teachseg.data.transforms import resize as resize_to

        meta = self.metas[index]
        norm = Normalise(meta.mean, meta.std)
        size = meta.image_size
        return np.stack(
            [
                norm(resize_to(to_float_image(im), size) if resize else to_float_image(im)).numpy()
                for im in images
            ]
        )

    def __call__(self, images: Sequence[np.ndarray], resize: bool = True) -> MemberOutput:
        """Every member's probabilities and the pooled features of ``images`` ((H, W, 3) uint8 each)."""
        probs: list[np.ndarray] = []
        models: list[int] = []
        features: np.ndarray | None = None
        for m, predictor in enumerate(self.predictors):
            x = self.normalised(images, m, resize)
            for view in self.views:
                axis = _VIEW_AXES[view]
                xi = np.ascontiguousarray(np.flip(x, axis)) if axis else x
                self._pooled.clear()
                p = predictor.predict_normalised(xi)
                if axis:
                    p = np.flip(p, axis - 1)
                if probs and p.shape[-2:] != probs[0].shape[-2:]:  # a Student at another image_size
                    p = self._resized(p, probs[0].shape[-2:])
                if m == 0 and view is None:
                    features = np.concatenate(self._pooled, axis=0)
                probs.append(np.ascontiguousarray(p, dtype=np.float32))
                models.append(m)
        assert features is not None
        return MemberOutput(np.stack(probs, axis=1), np.asarray(models), features.astype(np.float32))

    def features(self, images: Sequence[np.ndarray], resize: bool = True) -> np.ndarray:
        """(N, C) pooled bottleneck features of the final model on ``images`` as they are (no other view)."""
        self._pooled.clear()
        self.predictors[0].predict_normalised(self.normalised(images, 0, resize))
        return np.concatenate(self._pooled, axis=0).astype(np.float32)

    def _resized(self, p: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
        import torch.nn.functional as F

        t = self._torch.from_numpy(np.ascontiguousarray(p))[:, None]
        return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[:, 0].numpy()
