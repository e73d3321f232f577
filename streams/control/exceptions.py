"""Errors of the control plane."""

from __future__ import annotations


class SpecError(ValueError):
    """A model graph spec that cannot be applied; ``path`` names where in the spec (dotted,
    as ``members.fm.params.lr``), and the message says what is wrong there."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path, self.problem = path, problem
