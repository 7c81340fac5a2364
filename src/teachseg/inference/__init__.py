"""Prediction: model runner, sliding-window inferer, blending, writers, per-input pipelines and the cohort run.

Reading slides, finding tissue, tile grids and resolution planning live in :mod:`teachseg.wsi`. The flow is
``wsi.readers`` (read) -> ``wsi.tissue`` (where to look) -> ``wsi.tiling`` (tile grid, weights) ->
``predictor`` (batched model) -> ``sliding`` (split -> predict -> merge) -> ``blending`` (row-band stitching
to disk) -> ``writers`` (TIFF, GeoJSON, overlay). ``options`` resolves a run's settings once, ``pipelines``
turns one slide or image into its outputs, ``outputs`` finds inputs and names outputs, ``identity`` records
what made them (``--resume`` keeps only sets of the same identity), and ``run`` wires them over a cohort, reporting through ``progress`` callbacks. ``images`` predicts whole dataset images as in
training (evaluation, pseudo-labels) and ``quantise`` holds the one 8-bit probability encoding. Import the
submodules you need: this package imports nothing heavy itself.
"""
