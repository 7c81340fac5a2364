"""Look at ``predict``'s outputs in a browser: slide, probability map and outlines, served from 127.0.0.1.

:mod:`.catalog` reads an output folder, :mod:`.tiles` draws Deep Zoom tiles of the slide and of its
probability map on one grid, :mod:`.server` answers the page (``static/``, OpenSeadragon) over HTTP.
"""
