"""Certificates for a trained flow: the maximum-entropy dual bound by importance sampling, the Gibbs form, exact draws."""

from .dual import Certificate, Certified, admissible, certify, dual_terms, natural_parameters
from .gibbs import Gibbs, LowAcceptanceError, MHDraws
from .polish import Polish, polish
from .start import fit_natural_parameters, importance_ess, starting_point
from .symmetry import Reflections, find_reflections, missing_mass
from .weights import ess_fraction, pareto_k

__all__ = [
    "Certificate",
    "Certified",
    "Gibbs",
    "LowAcceptanceError",
    "MHDraws",
    "Polish",
    "Reflections",
    "admissible",
    "certify",
    "dual_terms",
    "ess_fraction",
    "find_reflections",
    "fit_natural_parameters",
    "importance_ess",
    "missing_mass",
    "natural_parameters",
    "pareto_k",
    "polish",
    "starting_point",
]
