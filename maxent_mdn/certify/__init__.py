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
from .start import fit_natural_parameters, importance_ess, starting_point

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
    "fit_natural_parameters",
    "importance_ess",
    "natural_parameters",
    "pareto_k",
    "polish",
    "starting_point",
]
