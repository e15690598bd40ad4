"""Problem specification: supports (and, with the solver, constraints)."""

from .support import Interval, Positive, Real, Simplex, Support

__all__ = ["Interval", "Positive", "Real", "Simplex", "Support"]
