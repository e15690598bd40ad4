"""Certificates for a trained flow: the maximum-entropy dual bound by importance sampling, the Gibbs form, exact draws."""

from .dual import (
    Certificate,
    Certified,
    Polish,
    admissible,
    certify,
    dual_terms,
    natural_parameters,
    pareto_k,
    polish,
)
from .gibbs import Gibbs, LowAcceptanceError, MHDraws

__all__ = [
    "Certificate",
    "Certified",
    "Gibbs",
    "LowAcceptanceError",
    "MHDraws",
    "Polish",
    "admissible",
    "certify",
    "dual_terms",
    "natural_parameters",
    "pareto_k",
    "polish",
]
