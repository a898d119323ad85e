"""Course mode: an instructor runs an ML-debugging assignment, from release to gradebook.

A layer on top of the core API (``WhipEnv``, ``grading``, task packs); nothing below imports it.

    assignment = load_assignment("assignment.toml")
    release(assignment, "release/")                     # student notebooks, assignment pinned
    rows = grade_submissions("submitted/", assignment)  # regraded from scratch, in parallel
    write_outputs(rows, assignment, "grades/")          # grades.csv, feedback pages, summary
"""

from __future__ import annotations

from ..episode_file import EpisodeFileError, EpisodeRecord, load_episode
from .assignment import Assignment, AssignmentError, TaskRefusedError, load_assignment
from .collect import Submission, collect, read_roster
from .feedback import summary_text, write_outputs
from .grade import CSV_FIELDS, GradeRow, grade_submissions, regrade
from .release import release

__all__ = [
    "CSV_FIELDS",
    "Assignment",
    "AssignmentError",
    "EpisodeFileError",
    "EpisodeRecord",
    "GradeRow",
    "Submission",
    "TaskRefusedError",
    "collect",
    "grade_submissions",
    "load_assignment",
    "load_episode",
    "read_roster",
    "regrade",
    "release",
    "summary_text",
    "write_outputs",
]
