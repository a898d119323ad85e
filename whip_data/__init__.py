"""Training data for WhipStudio task scripts: ``from whip_data import load_training_data``.

The implementation lives in ``whipstudio_nb.grading.loader`` (a sandbox kernel, which sees only
the package, gets this name as an alias of it).
"""

from whipstudio_nb.grading.loader import _install, load_training_data

__all__ = ["_install", "load_training_data"]
