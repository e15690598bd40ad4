"""Problem specification: supports, constraints, and spec files."""

from .constraints import RELATIONS, Covariance, Expectation, LogMean, Mean, SecondMoment
from .feasibility import InfeasibleError, check_feasible
from .preflight import StatisticError, check_statistics
from .scale import standardization
from .shipped import resolve_spec, shipped_specs, specs_dir
from .spec import MaxEntProblem, SpecError, load_spec
from .support import Interval, Positive, Real, Simplex, Support

__all__ = [
    "RELATIONS",
    "Covariance",
    "Expectation",
    "InfeasibleError",
    "Interval",
    "LogMean",
    "MaxEntProblem",
    "Mean",
    "Positive",
    "Real",
    "SecondMoment",
    "Simplex",
    "SpecError",
    "StatisticError",
    "Support",
    "check_feasible",
    "check_statistics",
    "load_spec",
    "resolve_spec",
    "shipped_specs",
    "specs_dir",
    "standardization",
]
