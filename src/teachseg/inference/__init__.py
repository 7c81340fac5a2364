"""Whole-slide and large-image prediction: tiles, sliding window, blending, slide readers and writers.

The flow is ``slides`` (read) -> ``tissue`` (where to look) -> ``tiling`` (tile grid, weights) ->
``predictor`` (batched model) -> ``blending`` (row-band stitching to disk) -> ``writers`` (TIFF, GeoJSON,
overlay, summary); ``run`` wires them together per input. Import the submodules you need: this package
imports nothing heavy itself.
"""
