"""Base distributions :math:`p_0(z_0)` of the flows."""

from .core import BaseDistribution
from .exact_mog import ExactMoG
from .gumbel_mog import GumbelMoG, Selection
from .normal import StandardNormal

__all__ = ["BaseDistribution", "ExactMoG", "GumbelMoG", "Selection", "StandardNormal"]
