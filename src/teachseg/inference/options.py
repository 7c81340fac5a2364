"""What ``predict`` was asked for (:class:`PredictOptions`), what the model says (:class:`ModelInfo`), and the
settings both resolve to, once per run (:class:`ResolvedOptions`), shared by the slide and image pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from teachseg.inference.quantise import threshold_u8
from teachseg.wsi.resolution import SOURCE_IGNORED, SOURCE_METADATA, SOURCE_MODEL_NONE, SOURCE_OPTION


@dataclass
class PredictOptions:
    """How to predict; ``None`` means "from the model folder" (tile = image_size, mpp, threshold)."""

    tile: int | None = None
    overlap: float = 0.25
    batch_size: int = 8
    mpp: float | None = None  # resolution to predict at (um/px); None: the model's
    level: int | None = None
    slide_mpp: float | None = None  # the slides' level-0 um/px, overriding their metadata
    ignore_mpp: bool = False  # predict slides at level 0 whatever the resolutions
    tissue_mask: bool = True
    threshold: float | None = None
    min_area_um2: float = 500.0
    min_area_px: float = 64.0  # used when the slide's resolution is unknown (level-0 pixels)
    simplify_px: float = 0.5  # GeoJSON simplification tolerance, in pixels of the vectorised level
    resize: bool | None = None  # ordinary images: resize to image_size (None: when the model has no mpp)
    vector_max_side: int = 8192
    thumb_max_side: int = 2048
    resume: bool = False


@dataclass
class ModelInfo:
    """What the summary says about the model."""

    folder: str
    arch: str
    encoder: str
    image_size: int
    mpp: float | None
    threshold: float
    backend: str = "torch"
    precision: str = "fp32"
    tta: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None  # of model.safetensors (None: a predictor built in code)
    onnx_sha256: str | None = None  # of the ONNX file given or found in the folder (not one exported here)
    mean: list[float] | None = None  # the normalisation the weights expect
    std: list[float] | None = None


@dataclass(frozen=True)
class ResolvedOptions:
    """Every setting of a ``predict`` run with the model's defaults filled in: built once by
    :func:`resolve_options`, read by both pipelines."""

    tile: int
    overlap: float
    batch_size: int
    threshold: float
    threshold_u8: int  # stored 8-bit probabilities at or above it are tumour
    mpp: float | None  # slides: the resolution to predict at (None: level 0 as it is)
    level: int | None
    slide_mpp: float | None
    slide_mpp_source: str  # where the slides' level-0 um/px comes from
    ignore_mpp: bool
    tissue_mask: bool
    resize_images: bool  # ordinary images: resized to the model's image_size
    image_size: int
    image_mpp_source: str  # recorded for ordinary images (their um/px is not used)
    min_area_um2: float
    min_area_px: float
    simplify_px: float
    vector_max_side: int
    thumb_max_side: int
    resume: bool

    @property
    def slides_at_level0_as_they_are(self) -> bool:
        """True when the model records no resolution and nothing else chooses one."""
        return self.mpp is None and self.level is None and not self.ignore_mpp


def resolve_options(opts: PredictOptions, model: ModelInfo) -> ResolvedOptions:
    """Fill ``opts``' blanks from the model (tile, threshold, mpp, whether images are resized)."""
    threshold = model.threshold if opts.threshold is None else opts.threshold
    resize = opts.resize if opts.resize is not None else model.mpp is None
    return ResolvedOptions(
        tile=opts.tile or model.image_size,
        overlap=opts.overlap,
        batch_size=opts.batch_size,
        threshold=threshold,
        threshold_u8=threshold_u8(threshold),
        mpp=opts.mpp if opts.mpp is not None else model.mpp,
        level=opts.level,
        slide_mpp=opts.slide_mpp,
        slide_mpp_source=SOURCE_OPTION if opts.slide_mpp is not None else SOURCE_METADATA,
        ignore_mpp=opts.ignore_mpp,
        tissue_mask=opts.tissue_mask,
        resize_images=bool(resize),
        image_size=model.image_size,
        image_mpp_source=SOURCE_MODEL_NONE if resize and model.mpp is None else SOURCE_IGNORED,
        min_area_um2=opts.min_area_um2,
        min_area_px=opts.min_area_px,
        simplify_px=opts.simplify_px,
        vector_max_side=opts.vector_max_side,
        thumb_max_side=opts.thumb_max_side,
        resume=opts.resume,
    )
