"""Which images (or slide regions) to annotate next: informativeness, diversity and hygiene of a pool.

The flow: :mod:`.pool` finds the candidates of a run folder, a folder of images or a model folder and leaves
out what must never be annotated next (held-out images, their groups, duplicates of masked images);
:mod:`.members` runs the model (and the Teacher and Student of a self-training run) over the candidates with
flip views; :mod:`.scoring` turns those probabilities into the parts of the informativeness score;
:mod:`.diversity` picks the budget greedily by informativeness times distance to what is already chosen or
labelled; :mod:`.outputs` writes ``suggestions.csv``, ``suggest.json`` and the contact sheet; :mod:`.slides`
does the same for square regions of slide tissue and writes a QuPath GeoJSON of them; :mod:`.rank` wires it.
"""
