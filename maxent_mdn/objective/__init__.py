"""Objectives: base-density estimators and their kernels."""

from .concrete import concrete_log_prob, exp_concrete_log_prob
from .estimators import ESTIMATORS, check_estimator, diag_normal_log_prob, mixture_log_prob
from .kernels import gaussian_log_density_matrix, log_mean_gaussian

__all__ = [
    "ESTIMATORS",
    "check_estimator",
    "concrete_log_prob",
    "diag_normal_log_prob",
    "exp_concrete_log_prob",
    "gaussian_log_density_matrix",
    "log_mean_gaussian",
    "mixture_log_prob",
]
