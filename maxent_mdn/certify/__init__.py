"""Certificates for a trained flow: the maximum-entropy dual bound, estimated by importance sampling."""

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

__all__ = [
    "Certificate",
    "Certified",
    "Polish",
    "admissible",
    "certify",
    "dual_terms",
    "natural_parameters",
    "pareto_k",
    "polish",
]
