r"""The cases of the ``scale`` experiment: where a flow is needed, and where the solver has been weak.

* :func:`power_moments`: :math:`\mathbb E[x^k] = m_k`, :math:`k = 1..K`, on an interval,
  with :math:`m_k` the moments of a known density (:data:`POWER_DENSITIES`: a
  two-bump mixture and a skewed Beta on :math:`[0, 1]`, a shifted lognormal on
  :math:`[0, 5]`). The maximum-entropy answer is *not* that density but
  :math:`p^* \propto \exp(\sum_k \eta_k x^k)`; the grid solver gives it. The rows are
  nearly collinear (the moment problem a reconstruction user brings).
* :func:`quartic_product`: :math:`\mathbb E[x_i^2] = 1`, :math:`\mathbb E[x_i^4] = 1.5`
  for every coordinate of :math:`\mathbb R^D`: :math:`2^D` modes. The constraints
  split over coordinates, so the answer is the product of :math:`D` copies of the
  one-dimensional bimodal answer (:class:`~maxent_mdn.reference.product.ProductReference`),
  :math:`H^* = D \times 1.14171`.

Example:
    >>> problem = power_moments("skewed", 4)
    >>> problem.labels, problem.support
    (['m1', 'm2', 'm3', 'm4'], Interval(0, 1))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import integrate, stats

from ..problem import Expectation, Interval, MaxEntProblem, Real
from ..reference import ProductReference, grid_reference

__all__ = [
    "POWER_CASES",
    "POWER_DENSITIES",
    "SCALE_CASES",
    "power_moments",
    "quartic_product",
    "quartic_product_reference",
]

#: name -> (interval, density on it up to a constant)
POWER_DENSITIES: dict[str, tuple[tuple[float, float], Callable[[float], float]]] = {
    "bimodal": (
        (0.0, 1.0),
        lambda x: 0.6 * stats.norm.pdf(x, 0.25, 0.07) + 0.4 * stats.norm.pdf(x, 0.7, 0.1),
    ),
    "skewed": ((0.0, 1.0), lambda x: stats.beta.pdf(x, 2.0, 6.0)),
    "lognormal": ((0.0, 5.0), lambda x: stats.lognorm.pdf(x - 0.5, 0.6) if x > 0.5 else 0.0),
}

#: (density, number of moments) of the power-moment cases
POWER_CASES: tuple[tuple[str, int], ...] = (
    ("bimodal", 4),
    ("bimodal", 8),
    ("bimodal", 10),
    ("skewed", 6),
    ("lognormal", 4),
    ("lognormal", 8),
)

#: the ``scale`` experiment's cases (names of :func:`~maxent_mdn.experiments.runner.problem_for`), by difficulty
SCALE_CASES: tuple[str, ...] = (
    "gaussian_3d",
    "dirichlet-5d",
    "dirichlet-10d",
    "dirichlet-20d",
    *(f"power-{d}-{k}" for d, k in POWER_CASES),
    "trimodal-1d",
    "quartic_2d",
    "quartic-product-4d",
    "quartic-product-8d",
)


def power_moments(density: str, order: int) -> MaxEntProblem:
    """:math:`\\mathbb E[x^k]` for :math:`k = 1..`\\ ``order`` of ``density`` (:data:`POWER_DENSITIES`) on its interval."""
    if density not in POWER_DENSITIES:
        raise ValueError(f"unknown density {density!r}; choose from {', '.join(POWER_DENSITIES)}")
    if not isinstance(order, int) or not 1 <= order <= 12:
        raise ValueError(f"order must be an integer in 1..12, got {order!r}")
    (low, high), pdf = POWER_DENSITIES[density]
    breaks = list(np.linspace(low, high, 11))  # quad on sub-intervals: the bumps are narrow
    z = integrate.quad(pdf, low, high, points=breaks, limit=400)[0]
    moments = [
        integrate.quad(lambda x, k=k: x**k * pdf(x), low, high, points=breaks, limit=400)[0] / z
        for k in range(1, order + 1)
    ]
    cons = [
        Expectation(lambda x, k=k: x[..., 0] ** k, m, name=f"m{k}") for k, m in enumerate(moments, start=1)
    ]
    return MaxEntProblem(1, cons, Interval(low, high), name=f"power-{density}-{order}")


def quartic_product(dim: int) -> MaxEntProblem:
    """:math:`\\mathbb E[x_i^2] = 1`, :math:`\\mathbb E[x_i^4] = 1.5` for :math:`i = 1..D`: :math:`2^D` modes."""
    cons = [
        Expectation(lambda x: x**2, [1.0] * dim, name="m2"),
        Expectation(lambda x: x**4, [1.5] * dim, name="m4"),
    ]
    return MaxEntProblem(dim, cons, Real(), name=f"quartic-product-{dim}d")


def quartic_product_reference(dim: int) -> ProductReference:
    """The exact answer of :func:`quartic_product`: ``dim`` copies of the 1D grid answer."""
    one = grid_reference(quartic_product(1))  # the one-coordinate problem, the same rows
    return ProductReference([one] * dim, [1] * dim)
