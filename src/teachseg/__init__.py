"""teachseg: breast-cancer segmentation that learns well from few annotations.

Teacher-student self-training over segmentation_models_pytorch architectures, trained with Lightning,
with whole-slide prediction and paper-ready reports.
"""

__version__ = "0.1.0"
