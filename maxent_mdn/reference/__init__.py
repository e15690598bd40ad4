"""Reference solutions: closed forms, and a cvxpy grid solver for one or two free coordinates."""

from __future__ import annotations

from ..problem.spec import MaxEntProblem
from .closed_form import (
    DirichletReference,
    ExponentialReference,
    GaussianReference,
    Reference,
    TruncatedExponentialReference,
    closed_form_reference,
    dirichlet_from_log_means,
)
from .grid import GridReference, grid_primal_entropy, grid_reference
from .grid_method import GridSolution, solve_grid
from .product import ProductReference

__all__ = [
    "DirichletReference",
    "ExponentialReference",
    "GaussianReference",
    "GridReference",
    "GridSolution",
    "ProductReference",
    "Reference",
    "TruncatedExponentialReference",
    "closed_form_reference",
    "dirichlet_from_log_means",
    "grid_primal_entropy",
    "grid_reference",
    "reference_for",
    "solve_grid",
]


def reference_for(problem: MaxEntProblem) -> Reference | None:
    """The exact answer: a closed form if recognized, else the grid solution (≤ 2 free coordinates), else ``None``."""
    ref = closed_form_reference(problem)
    if ref is not None:
        return ref
    if problem.support.flow_dim(problem.dim) <= 2:
        return grid_reference(problem)
    return None
