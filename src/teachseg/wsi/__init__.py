"""Whole-slide primitives shared by prediction and data preparation: readers, tissue, tiles, resolution, polygons."""
