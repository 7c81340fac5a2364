"""Report tables: the table model (model.py), its CSV/Markdown/LaTeX renderers (render.py) and the study's table builders."""
