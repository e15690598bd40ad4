r"""The cases of the ``mixture`` experiment: modes far apart, in one and more coordinates (issue 20).

:func:`separated_modes` constrains :math:`\mathbb E[x_i^2]` and
:math:`\mathbb E[x_i^4]` of every coordinate to the moments of

.. math::

    p_s(x) \propto \exp\!\big(-a (x^2 - 1)^2\big), \qquad a = s^2 / 32,

two modes at :math:`\pm 1` whose width (the curvature at a mode,
:math:`\sigma = 1 / \sqrt{8a}`) makes their separation :math:`2 / \sigma = s`
widths. :math:`p_s` is in the exponential family of the two statistics
(:math:`\eta_2 = 2a`, :math:`\eta_4 = -a`), so it *is* the maximum-entropy
answer; in :math:`D` coordinates the answer is the product of :math:`D`
copies, :math:`2^D` modes on the corners of a cube. The barrier between the
modes is :math:`a` nats high: 0.5, 2 and 8 at :math:`s` = 4, 8, 16, the last
leaving :math:`e^{-8} \approx 3 \times 10^{-4}` of the peak density in the gap
that a flow from a one-mode base must stretch across.

Example:
    >>> problem = separated_modes(2, 8)
    >>> problem.name, problem.dim, problem.labels
    ('modes-2d-sep8', 2, ['m2[0]', 'm2[1]', 'm4[0]', 'm4[1]'])
"""

from __future__ import annotations

import math
from functools import cache

from scipy import integrate

from ..problem import Expectation, MaxEntProblem, Real
from ..reference import ProductReference, grid_reference

__all__ = ["SEPARATIONS", "separated_modes", "separated_modes_reference", "well_depth"]

#: the separation sweep: the modes' distance in units of their width
SEPARATIONS: tuple[int, ...] = (4, 8, 16)


def well_depth(separation: float) -> float:
    """:math:`a = s^2 / 32`: the quartic's coefficient, and the barrier between the modes in nats."""
    if isinstance(separation, bool) or not (
        isinstance(separation, int | float) and math.isfinite(separation) and separation > 0
    ):
        raise ValueError(f"separation must be a positive number of mode widths, got {separation!r}")
    return separation**2 / 32.0


@cache
def _moments(separation: float) -> tuple[float, float]:
    """:math:`(\\mathbb E x^2, \\mathbb E x^4)` under :math:`p_s`, by quadrature (the modes lie in [-3, 3])."""
    a = well_depth(separation)

    def density(x: float) -> float:
        return math.exp(-a * (x * x - 1.0) ** 2)

    points = [-1.0, 0.0, 1.0]
    z = integrate.quad(density, -4.0, 4.0, points=points, limit=400)[0]
    m2, m4 = (
        integrate.quad(lambda x, k=k: x**k * density(x), -4.0, 4.0, points=points, limit=400)[0] / z
        for k in (2, 4)
    )
    return m2, m4


def separated_modes(dim: int, separation: float) -> MaxEntProblem:
    """:math:`2^D` modes ``separation`` widths apart: the second and fourth moments of :math:`p_s` per coordinate."""
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    well_depth(separation)  # a positive number, or a clear error
    m2, m4 = _moments(float(separation))
    cons = [
        Expectation(lambda x: x**2, [m2] * dim, name="m2"),
        Expectation(lambda x: x**4, [m4] * dim, name="m4"),
    ]
    return MaxEntProblem(dim, cons, Real(), name=f"modes-{dim}d-sep{separation:g}")


def separated_modes_reference(dim: int, separation: float) -> ProductReference:
    """The exact answer of :func:`separated_modes`: ``dim`` copies of the one-coordinate grid answer."""
    one = grid_reference(separated_modes(1, separation))
    return ProductReference([one] * dim, [1] * dim)
