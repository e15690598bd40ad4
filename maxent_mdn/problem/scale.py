r"""Where and how wide the answer is, read off the targets: the flow's fixed standardization.

A flow starts near its base, a standard normal. When the targets put the
answer far from it (a mean of 10, a standard deviation of 1000), gradient
steps must first carry every sample there, and the spline layers, which are
the identity outside :math:`[-10, 10]`, cannot: measured, a 3-D Gaussian with
mean (10, 0, −5) ended at KL 205 with the default settings, the same
problem at mean 0 at KL 0.002. :func:`standardization` reads a location and
a scale per coordinate from the equality constraints whose meaning is known,

- on :class:`Real`: :math:`m_i` from :class:`Mean` (or a :class:`Covariance`'s
  own mean) and :math:`s_i = \sqrt{\Sigma_{ii}}` from a :class:`Covariance`, or
  :math:`s_i = \sqrt{S_{ii} - m_i^2}` from a :class:`SecondMoment`;
- on :class:`Positive`: a shift :math:`\log m_i - \tfrac12` in log space (so
  that :math:`e^{z}`, :math:`z \sim \mathcal N(\cdot, 1)`, has mean :math:`m_i`),

and the solver puts a fixed :class:`~maxent_mdn.model.transforms.Standardize`
layer :math:`y = m + s \odot x` between the learnable layers and the support
map. Bounded supports (:class:`Interval`, :class:`Simplex`) and statistics
of unknown meaning leave the flow as it is.
"""

from __future__ import annotations

import math

from .constraints import Covariance, Mean, SecondMoment
from .spec import MaxEntProblem
from .support import Positive, Real

__all__ = ["standardization"]


def standardization(problem: MaxEntProblem) -> tuple[list[float], list[float]] | None:
    """``(loc, scale)`` per flow coordinate implied by the targets, or ``None`` when nothing is known.

    Example:
        >>> from maxent_mdn import Covariance, Mean, MaxEntProblem
        >>> p = MaxEntProblem(2, [Mean([10.0, 0.0]), Covariance([[4.0, 0.0], [0.0, 1.0]], mean=[10.0, 0.0])])
        >>> standardization(p)
        ([10.0, 0.0], [2.0, 1.0])
    """
    dim = problem.dim
    loc: list[float | None] = [None] * dim
    var: list[float | None] = [None] * dim
    second: list[float | None] = [None] * dim
    for c in problem.constraints:
        if c.relation != "==":
            continue
        if isinstance(c, Mean):
            dims = c.dims if c.dims is not None else list(range(dim))
            for d, m in zip(dims, c.target.tolist(), strict=True):
                loc[d] = m
        elif isinstance(c, Covariance):
            for d in range(dim):
                loc[d] = float(c.mean[d]) if loc[d] is None else loc[d]
                var[d] = float(c.matrix[d, d])
        elif isinstance(c, SecondMoment):
            diag = c.matrix.diagonal() if c.matrix is not None else c.target
            for d, s2 in enumerate(diag.tolist()[:dim]):
                second[d] = s2
    if isinstance(problem.support, Positive):
        shift = [math.log(m) - 0.5 if m is not None and m > 0 else 0.0 for m in loc]
        return (shift, [1.0] * dim) if any(shift) else None
    if not isinstance(problem.support, Real):
        return None
    centre = [0.0 if m is None else m for m in loc]
    scale = []
    for m, v, s2 in zip(centre, var, second, strict=True):
        if v is None and s2 is not None:
            v = s2 - m * m if s2 > m * m else s2
        scale.append(math.sqrt(v) if v is not None and v > 0 else 1.0)
    if all(m == 0.0 for m in centre) and all(s == 1.0 for s in scale):
        return None
    return centre, scale
