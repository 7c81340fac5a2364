"""Data: find images and masks (:mod:`.discover`), read them (:mod:`.imageio`), split them
(:mod:`.splits`) and generate a synthetic demo set (:mod:`.synth`).

Kept light on purpose: import the submodules you need (``from teachseg.data.discover import discover``).
"""
