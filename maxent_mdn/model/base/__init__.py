"""Base distributions :math:`p_0(z_0)` of the flows, and the density math they rest on.

``kernels`` (the nested Gaussian kernel), ``estimators`` (the base-density
estimators and their one registry, :data:`ESTIMATORS`) and ``concrete`` (the
Concrete / ExpConcrete densities of eq. 2).
"""

from .core import BaseDistribution
from .estimators import ESTIMATORS
from .exact_mog import ExactMoG
from .gumbel_mog import GumbelMoG, Selection
from .normal import StandardNormal

__all__ = ["ESTIMATORS", "BaseDistribution", "ExactMoG", "GumbelMoG", "Selection", "StandardNormal"]
