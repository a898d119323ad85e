"""The notebook front end: the IPython magics (``%load_ext whipstudio_nb``, in ``magics``) and
the widgets (``widgets``) that show observations, curves, diffs and grade reports."""
