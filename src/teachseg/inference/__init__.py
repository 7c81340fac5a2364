"""Whole-slide and large-image prediction: predictor, sliding window, blending, writers, per-input pipelines.

Reading slides, finding tissue, tile grids and resolution planning live in :mod:`teachseg.wsi`. The flow is
``wsi.readers`` (read) -> ``wsi.tissue`` (where to look) -> ``wsi.tiling`` (tile grid, weights) ->
``predictor`` (batched model) -> ``blending`` (row-band stitching to disk) -> ``writers`` (TIFF, GeoJSON,
overlay, summary); ``run`` wires them together per input. Import the submodules you need: this package
imports nothing heavy itself.
"""
