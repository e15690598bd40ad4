r"""Planar and radial flows (Rezende & Mohamed 2015), with numerical inverses.

Both are residual maps :math:`y = x + (\text{one-unit term})` whose
invertibility is kept by a reparameterization of their parameters. Neither has
an inverse in closed form for general parameters, but each reduces to a
*scalar* monotone equation: the radial one is a quadratic in the radius, the
planar one is solved by bisection along :math:`w` followed by one Newton step
that carries gradients (implicit differentiation), so :meth:`inverse` is exact
to floating-point accuracy and :meth:`Flow.log_prob` works with these layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._checks import positive_int
from .core import Transform

__all__ = ["Planar", "Radial"]

_BISECTION_STEPS = 60
_MARGIN = 1e-4


class Planar(Transform):
    r"""Planar flow :math:`y = x + \hat u \tanh(w^\top x + b)`.

    .. math::

        \log|\det J| = \log|1 + \hat u^\top \psi(x)|, \quad
        \psi(x) = (1 - \tanh^2(w^\top x + b))\, w,

    with :math:`\hat u = u + (m(w^\top u) - w^\top u)\, w / \|w\|^2` and
    :math:`m(a) = -1 + \epsilon + \log(1 + e^a)`, which forces
    :math:`w^\top \hat u > -1` and hence invertibility (the margin
    :math:`\epsilon = 10^{-4}` keeps the determinant away from 0 in floating point).

    Conditioning: :math:`m(0) = -1 + \log 2 \ne 0`, so even at :math:`w^\top u = 0` the
    reparameterization adds :math:`\approx 0.31\, w/\|w\|^2` to :math:`u`, and
    :math:`\|\hat u\|` grows like :math:`1/\|w\|` as :math:`w` shrinks (174 at
    :math:`\|w\| \approx 10^{-3}`); the layer then translates by
    :math:`\hat u \tanh(b)`, and a step on :math:`b` moves the output by
    :math:`\|\hat u\|` times its size. The log-determinant and the inverse stay exact
    there (to :math:`10^{-11}`, tested), so this conditioning is the likely (not yet
    measured) reason why planar stacks diverge in the ``mixture`` experiment's flow sweep.

    Inverse: with :math:`a = w^\top x`, :math:`w^\top y = a + (w^\top\hat u)\tanh(a + b)`
    is strictly increasing in :math:`a`, and its root lies within
    :math:`|w^\top \hat u|` of :math:`w^\top y`; bisection finds it, then
    :math:`x = y - \hat u \tanh(a + b)`.

    Example:
        >>> layer = Planar(2)
        >>> x = torch.randn(5, 2)
        >>> y, ladj = layer(x)
        >>> torch.allclose(layer.inverse(y)[0], x, atol=1e-5)
        True
    """

    def __init__(self, dim: int, init_scale: float = 0.1) -> None:
        super().__init__(positive_int("dim", dim))
        self.u = nn.Parameter(init_scale * torch.randn(dim))
        self.w = nn.Parameter(init_scale * torch.randn(dim))
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> Tensor:
        r"""The constrained :math:`\hat u` with :math:`w^\top\hat u > -1`."""
        wu = self.w @ self.u
        # softplus underflows for very negative w.u, which would give w.u_hat == -1 and a
        # zero Jacobian determinant; the margin keeps log|det| >= log(_MARGIN) > -inf
        m = -1.0 + _MARGIN + F.softplus(wu)
        return self.u + (m - wu) * self.w / self.w.pow(2).sum().clamp_min(1e-12)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u = self.u_hat()
        h = torch.tanh(x @ self.w + self.b)
        y = x + h.unsqueeze(-1) * u
        ladj = torch.log1p((1.0 - h.pow(2)) * (self.w @ u))
        return y, ladj

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        u = self.u_hat()
        wu = self.w @ u
        target = y @ self.w
        with torch.no_grad():
            radius = wu.abs().detach() + 1e-6
            lo, hi = target - radius, target + radius
            for _ in range(_BISECTION_STEPS):
                mid = 0.5 * (lo + hi)
                above = mid + wu * torch.tanh(mid + self.b) > target
                hi = torch.where(above, mid, hi)
                lo = torch.where(above, lo, mid)
            a0 = 0.5 * (lo + hi)
        # one Newton step from the (detached) root: exact value, correct gradients
        h0 = torch.tanh(a0 + self.b)
        a = a0 - (a0 + wu * h0 - target) / (1.0 + wu * (1.0 - h0.pow(2)))
        h = torch.tanh(a + self.b)
        x = y - h.unsqueeze(-1) * u
        return x, -torch.log1p((1.0 - h.pow(2)) * wu)


class Radial(Transform):
    r"""Radial flow :math:`y = x + \beta h(r)(x - x_0)`, :math:`h(r) = 1/(\alpha + r)`, :math:`r = \|x - x_0\|`.

    .. math::

        \log|\det J| = (D-1)\log(1 + \beta h) + \log\!\big(1 + \beta\alpha/(\alpha + r)^2\big),

    with :math:`\alpha = \operatorname{softplus}(\tilde\alpha) > 0` and
    :math:`\beta = -\alpha + \operatorname{softplus}(\tilde\beta) \ge -\alpha`
    (invertibility). Inverse: the output radius :math:`r' = r(1 + \beta/(\alpha + r))`
    gives :math:`r^2 + (\alpha + \beta - r') r - \alpha r' = 0`, whose positive
    root is :math:`r`.

    Example:
        >>> layer = Radial(2)
        >>> x = torch.randn(5, 2)
        >>> torch.allclose(layer.inverse(layer(x)[0])[0], x, atol=1e-5)
        True
    """

    def __init__(self, dim: int, init_scale: float = 0.1) -> None:
        super().__init__(positive_int("dim", dim))
        self.x0 = nn.Parameter(init_scale * torch.randn(dim))
        self.alpha_raw = nn.Parameter(torch.zeros(()))
        self.beta_raw = nn.Parameter(torch.zeros(()))

    def _alpha_beta(self) -> tuple[Tensor, Tensor]:
        alpha = F.softplus(self.alpha_raw)
        return alpha, -alpha + F.softplus(self.beta_raw)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        alpha, beta = self._alpha_beta()
        diff = x - self.x0
        r = diff.norm(dim=-1)
        bh = beta / (alpha + r)
        y = x + bh.unsqueeze(-1) * diff
        ladj = (self.dim - 1) * torch.log1p(bh) + torch.log1p(beta * alpha / (alpha + r).pow(2))
        return y, ladj

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        alpha, beta = self._alpha_beta()
        diff_y = y - self.x0
        r_out = diff_y.norm(dim=-1)
        p = alpha + beta - r_out
        root = torch.sqrt(p.pow(2) + 4.0 * alpha * r_out)
        # the two algebraically equal forms of the positive root, each free of cancellation on its side
        r = torch.where(p > 0, 2.0 * alpha * r_out / (p + root).clamp_min(1e-30), 0.5 * (root - p))
        bh = beta / (alpha + r)
        x = self.x0 + diff_y / (1.0 + bh).unsqueeze(-1)
        ladj = (self.dim - 1) * torch.log1p(bh) + torch.log1p(beta * alpha / (alpha + r).pow(2))
        return x, -ladj
