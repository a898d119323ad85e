"""Grading: a harness that measures what a submission really does, and the scores made from it."""

from __future__ import annotations

from .grader import grade_code

__all__ = ["grade_code"]
