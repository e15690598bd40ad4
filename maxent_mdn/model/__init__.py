"""The model: base distributions, flow layers, and flows built from them."""

from .base import BaseDistribution, ExactMoG, GumbelMoG, Selection, StandardNormal
from .contract import MaxEntModel
from .factory import (
    BASES,
    DEFAULT_LAYERS,
    DEFAULTS,
    SIMPLEX_MAPS,
    TRANSFORMS,
    make_base,
    make_flow,
    support_bijector,
)
from .flow import Flow

__all__ = [
    "BASES",
    "DEFAULTS",
    "DEFAULT_LAYERS",
    "SIMPLEX_MAPS",
    "TRANSFORMS",
    "BaseDistribution",
    "ExactMoG",
    "Flow",
    "GumbelMoG",
    "MaxEntModel",
    "Selection",
    "StandardNormal",
    "make_base",
    "make_flow",
    "support_bijector",
]
