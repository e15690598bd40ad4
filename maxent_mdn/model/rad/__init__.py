"""RAD (Real and Discrete) flows: piecewise-invertible folding layers with a gating network."""

from .flow import RADFlow, make_rad
from .fold import Fold

__all__ = ["Fold", "RADFlow", "make_rad"]
