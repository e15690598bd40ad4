r"""When is a constraint row met? One tolerance, relative to the row's own scale.

A row :math:`\mathbb E_q[T_j] \;(=, \le, \ge)\; b_j` is judged on the scale

.. math::

    \text{scale}_j = \max\big(|b_j|,\ s_j\big),

where :math:`s_j` is the standard deviation of :math:`T_j` under the model.
The tolerance is :math:`\text{rtol}\cdot\text{scale}_j` (``rtol = 0.01``:
"within 1%"). A target at least as large as its statistic's spread is judged
relative to itself; a smaller one (a mean of 0, :math:`E x^4 = 0.011` on
:math:`[0, 1]` with spread 0.03) relative to the spread, the scale on which
the answer moves: an error :math:`\delta` in one row costs about
:math:`\mathrm{KL} \approx \tfrac12 (\delta / s_j)^2`, so at the tolerance at most
:math:`\tfrac12\,\text{rtol}^2` (:math:`5\cdot 10^{-5}` nats at 1%). An absolute
floor such as the 0.005 this replaces let :math:`E x^4 = 0.011` off by 45%.

Finite samples cannot resolve a tolerance below their own noise, so a row
whose measured violation is within ``z`` standard errors of zero is met too
(:func:`met`): its error is below what the samples can see. The per-row table of a
solution is :func:`~maxent_mdn.objective.report.row_table`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["met", "row_tolerance"]


def row_tolerance(targets: np.ndarray, spread: np.ndarray, rtol: float, atol: float = 0.0) -> np.ndarray:
    r"""Per row: :math:`\max(\text{rtol}\cdot\max(|b_j|, s_j),\ \text{atol})`.

    Args:
        targets: :math:`b`, shape ``(M,)``.
        spread: :math:`s`, the statistics' standard deviations under the model, ``(M,)``.
        rtol: the relative tolerance (0.01: 1%).
        atol: an optional absolute floor (0: none).

    Example:
        >>> row_tolerance(np.array([0.011, 0.0, 2.0]), np.array([0.03, 1.0, 1.0]), 0.01)
        array([0.0003, 0.01  , 0.02  ])
    """
    targets, spread = np.abs(np.asarray(targets, float)), np.asarray(spread, float)
    return np.maximum(rtol * np.maximum(targets, spread), atol)


def met(violation: np.ndarray, stderr: np.ndarray, tolerance: np.ndarray, z: float = 3.0) -> np.ndarray:
    """Per row: the violation is within its tolerance, or within ``z`` standard errors of zero.

    Example:
        >>> met(np.array([0.002, 0.002]), np.array([0.001, 0.0001]), np.array([0.001, 0.001]))
        array([ True, False])
    """
    return np.asarray(violation) <= np.maximum(tolerance, z * np.asarray(stderr))
