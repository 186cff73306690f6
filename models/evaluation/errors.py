"""Errors raised by the evaluation tools."""

from __future__ import annotations

__all__ = ["EvaluationError", "MissingDependencyError"]


class EvaluationError(ValueError):
    """Input the evaluation cannot measure: an empty or malformed media folder, too few
    identities, a file that is not an image, a score set without genuine or impostor pairs."""


class MissingDependencyError(ImportError):
    """A measuring instrument's package (the ``eval`` extra) is not installed."""
