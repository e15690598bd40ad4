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


def _cumulative(raw: Tensor) -> Tensor:
    r"""The bins' cumulative fractions :math:`C_1, \dots, C_K` of a softmax over the last dimension."""
    return torch.cumsum(torch.softmax(raw, -1), -1)


def _bin_of(xc: Tensor, cumulative: Tensor, bound: float) -> Tensor:
    r"""Per element, the bin :math:`k` with :math:`x^{(k)} \le x_c`: the number of interior knots at or below it.

    The one search over all :math:`K` bins, done on the unit interval, :math:`u = (x_c + B) / 2B \ge
    mj + (1 - mK)\,C_j` for :math:`j = 1, \dots, K - 1` (:func:`_position` without its affine map).
    """
    k = cumulative.shape[-1]
    j = torch.arange(1, k, device=xc.device, dtype=cumulative.dtype)
    interior = torch.add(_MIN_BIN * j, cumulative[..., :-1], alpha=1.0 - _MIN_BIN * k)
    return ((xc.unsqueeze(-1) + bound) / (2.0 * bound) >= interior).sum(-1)


def _position(cumulative: Tensor, j: Tensor, k: int, bound: float) -> Tensor:
    r"""Knot :math:`j` of :math:`K` on :math:`[-B, B]`: :math:`x^{(j)} = -B + 2B\,(mj + (1 - mK)\,C_j)`.

    Every bin is at least :math:`2Bm` wide (:math:`m` = ``_MIN_BIN``). ``cumulative`` is :math:`C_j`
    per element; the end knots are pinned to exactly :math:`\mp B` (a cumulative sum may round), so
    whatever it holds at :math:`j = 0` is unused.
    """
    knot = (2.0 * bound) * (_MIN_BIN * j + (1.0 - _MIN_BIN * k) * cumulative) - bound
    return torch.where(j == 0, -bound, torch.where(j == k, bound, knot))


def _pair(table: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    """``table[..., idx - 1]`` and ``table[..., idx]`` per element in one gather, the indices clamped to the table."""
    last = table.shape[-1] - 1
    lo, hi = table.gather(-1, torch.stack([(idx - 1).clamp(0, last), idx.clamp(0, last)], -1)).unbind(-1)
    return lo, hi


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
    # Only the search needs every knot. The rest is gathered at the bin first and mapped after, so the
    # per-bin work on S + (K,) is two softmaxes, two cumulative sums and one comparison.
    k = widths.shape[-1]
    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)
    cx, cy = _cumulative(widths), _cumulative(heights)
    idx = _bin_of(xc, cy if inverse else cx, bound)
    j = idx.to(x.dtype)
    cx_lo, cx_hi = _pair(cx, idx)  # C_k and C_{k+1}: the table holds C_1..C_K
    cy_lo, cy_hi = _pair(cy, idx)
    xk, yk = _position(cx_lo, j, k, bound), _position(cy_lo, j, k, bound)
    wk, hk = _position(cx_hi, j + 1, k, bound) - xk, _position(cy_hi, j + 1, k, bound) - yk
    if k > 1:  # the interior derivatives delta_1..delta_{K-1}; delta_0 = delta_K = 1
        raw_lo, raw_hi = _pair(derivatives, idx)
        d_lo, d_hi = (_MIN_DERIV + F.softplus(torch.stack([raw_lo, raw_hi]) + _DERIV_OFFSET)).unbind(0)
        dk, dk1 = torch.where(idx == 0, 1.0, d_lo), torch.where(idx == k - 1, 1.0, d_hi)
    else:
        dk = dk1 = torch.ones_like(xc)
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
    widths, heights, derivs = params.split([k, k, k - 1], -1)  # one gradient buffer, not three
    return rational_quadratic_spline(x, widths, heights, derivs, bound, inverse)
