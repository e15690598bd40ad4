"""The model: base distributions, flow layers, and flows built from them."""

from .base import BaseDistribution, ExactMoG, GumbelMoG, Selection, StandardNormal
from .contract import MaxEntModel
from .factory import (
    BASE_CHOICES,
    BASES,
    DEFAULT_LAYERS,
    DEFAULTS,
    MIXTURE_MAX_DIM,
    RAD_BASES,
    SIMPLEX_MAPS,
    TRANSFORMS,
    make_base,
    make_flow,
    resolve_base,
    support_bijector,
)
from .flow import Flow

__all__ = [
    "BASES",
    "BASE_CHOICES",
    "DEFAULTS",
    "DEFAULT_LAYERS",
    "MIXTURE_MAX_DIM",
    "RAD_BASES",
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
    "resolve_base",
    "support_bijector",
]
