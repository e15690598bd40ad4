r"""Monotone rational-quadratic splines (Gregory & Delbourgo 1982; Durkan et al. 2019).

On :math:`[-B, B]` with knots :math:`(x^{(k)}, y^{(k)})`, bin widths
:math:`w_k`, heights :math:`h_k`, slopes :math:`s_k = h_k / w_k` and knot
derivatives :math:`\delta_k > 0`, for :math:`\xi = (x - x^{(k)})/w_k \in [0, 1]`:

.. math::

    y = y^{(k)} + \frac{h_k\,[s_k\xi^2 + \delta_k\xi(1-\xi)]}
                       {s_k + (\delta_{k+1} + \delta_k - 2 s_k)\,\xi(1-\xi)},
    \qquad
    \frac{dy}{dx} = \frac{s_k^2\,[\delta_{k+1}\xi^2 + 2 s_k\xi(1-\xi) + \delta_k(1-\xi)^2]}
                         {[s_k + (\delta_{k+1} + \delta_k - 2 s_k)\,\xi(1-\xi)]^2}.

The inverse solves the quadratic :math:`a\xi^2 + b\xi + c = 0` for the root in
:math:`[0, 1]`, :math:`\xi = (-b + \sqrt{b^2 - 4ac})/(2a) = 2c/(-b - \sqrt{b^2 - 4ac})`,
taking whichever form has no cancellation for the sign of :math:`b`. Outside :math:`[-B, B]` the map is the identity (boundary
derivatives are fixed to 1, so the density is continuous there).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["packed_spline", "rational_quadratic_spline"]

_MIN_BIN = 1e-3
_MIN_DERIV = 1e-3
# softplus(_DERIV_OFFSET) + _MIN_DERIV == 1: zero parameters give the identity
_DERIV_OFFSET = math.log(math.expm1(1.0 - _MIN_DERIV))


def _knots(raw: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    k = raw.shape[-1]
    size = _MIN_BIN + (1.0 - _MIN_BIN * k) * torch.softmax(raw, -1)
    knots = F.pad(torch.cumsum(size, -1), (1, 0))
    knots = 2.0 * bound * knots - bound
    # pin the end knots to exactly -B and B (the cumulative sum may round)
    ends = torch.full_like(knots[..., :1], bound)
    knots = torch.cat([-ends, knots[..., 1:-1], ends], -1)
    return knots, knots[..., 1:] - knots[..., :-1]


def rational_quadratic_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    bound: float,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""Element-wise spline and its log-derivative.

    Args:
        x: inputs, any shape ``S``.
        widths, heights: unnormalized bin sizes, shape ``S + (K,)``.
        derivatives: unconstrained interior knot derivatives, ``S + (K-1,)``.
        bound: the spline acts on :math:`[-B, B]`, identity outside.
        inverse: apply the inverse map.

    Returns:
        ``(y, log|dy/dx|)`` (for ``inverse=True``: ``(x, log|dx/dy|)``), each of shape ``S``.

    Example:
        >>> x = torch.linspace(-6, 6, 5)
        >>> p = torch.zeros(5, 4)
        >>> y, ladj = rational_quadratic_spline(x, p, p, torch.zeros(5, 3), bound=3.0)
        >>> torch.allclose(y, x, atol=1e-5), torch.allclose(ladj, torch.zeros(5), atol=1e-5)
        (True, True)
    """
    x_knots, w = _knots(widths, bound)
    y_knots, h = _knots(heights, bound)
    d = _MIN_DERIV + F.softplus(derivatives + _DERIV_OFFSET)
    d = F.pad(d, (1, 1), value=1.0)

    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)
    knots = y_knots if inverse else x_knots
    idx = ((xc.unsqueeze(-1) >= knots[..., :-1]).sum(-1, keepdim=True) - 1).clamp(0, w.shape[-1] - 1)

    def pick(t: Tensor) -> Tensor:
        return t.gather(-1, idx).squeeze(-1)

    xk, yk, wk, hk = pick(x_knots), pick(y_knots), pick(w), pick(h)
    dk, dk1 = pick(d[..., :-1]), pick(d[..., 1:])
    s = hk / wk
    curv = dk1 + dk - 2.0 * s
    if inverse:
        dy = xc - yk
        a = hk * (s - dk) + dy * curv
        b = hk * dk - dy * curv
        c = -s * dy
        sqrt_disc = (b.pow(2) - 4.0 * a * c).clamp_min(0.0).sqrt()
        # the same root in the two forms that avoid cancellation for b >= 0 and b < 0; each
        # branch's denominator is made safe where the other branch is taken, since a 0/0 in
        # the discarded branch of torch.where still turns its gradient into NaN
        pos = b >= 0
        den_pos = torch.where(pos, -b - sqrt_disc, -torch.ones_like(b))
        den_neg = torch.where(pos, torch.ones_like(a), 2.0 * a)
        xi = torch.where(pos, 2.0 * c / den_pos, (-b + sqrt_disc) / den_neg).clamp(0.0, 1.0)
        out = xk + xi * wk
    else:
        xi = (xc - xk) / wk
        out = yk + hk * (s * xi.pow(2) + dk * xi * (1.0 - xi)) / (s + curv * xi * (1.0 - xi))
    one_minus = 1.0 - xi
    den = s + curv * xi * one_minus
    deriv = s.pow(2) * (dk1 * xi.pow(2) + 2.0 * s * xi * one_minus + dk * one_minus.pow(2)) / den.pow(2)
    log_deriv = deriv.log()
    if inverse:
        log_deriv = -log_deriv
    return torch.where(inside, out, x), torch.where(inside, log_deriv, torch.zeros_like(log_deriv))


def packed_spline(x: Tensor, params: Tensor, bound: float, inverse: bool = False) -> tuple[Tensor, Tensor]:
    r""":func:`rational_quadratic_spline` with its parameters packed as a conditioner outputs them.

    ``params`` has shape ``S + (3K - 1,)``: :math:`K` widths, :math:`K` heights, then :math:`K - 1`
    interior derivatives.

    Example:
        >>> y, ladj = packed_spline(torch.tensor([0.5]), torch.zeros(1, 11), bound=3.0)  # K = 4: the identity
        >>> torch.allclose(y, torch.tensor([0.5]), atol=1e-5)
        True
    """
    k = (params.shape[-1] + 1) // 3
    widths, heights, derivs = params[..., :k], params[..., k : 2 * k], params[..., 2 * k :]
    return rational_quadratic_spline(x, widths, heights, derivs, bound, inverse)
