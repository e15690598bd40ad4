"""Certificates for a trained flow: the maximum-entropy dual bound by importance sampling, the Gibbs form, exact draws."""

from .dual import (
    Certificate,
    Certified,
    Polish,
    admissible,
    certify,
    dual_terms,
    natural_parameters,
    polish,
)
from .gibbs import Gibbs, LowAcceptanceError, MHDraws
from .start import fit_natural_parameters, importance_ess, starting_point
from .weights import ess_fraction, pareto_k

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
    "ess_fraction",
    "fit_natural_parameters",
    "importance_ess",
    "natural_parameters",
    "pareto_k",
    "polish",
    "starting_point",
]
