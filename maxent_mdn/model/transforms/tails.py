r"""A learnable tail layer: Gaussian tails in, exponential (or lighter) tails out."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._checks import positive_int
from .core import Transform

__all__ = ["Tails"]

#: the tail exponents live in (DELTA_MIN, DELTA_MAX); 1 is the identity
DELTA_MIN, DELTA_MAX = 0.25, 4.0


def _log_cosh(t: Tensor) -> Tensor:
    """:math:`\\log\\cosh t` for :math:`t \\ge 0` without overflow."""
    return t + F.softplus(-2.0 * t) - math.log(2.0)


class Tails(Transform):
    r"""Two-sided sinh-arcsinh map with a tail exponent per side and coordinate.

    With :math:`u = (x - m)/s` and :math:`\delta = \delta_+` for :math:`u > 0`,
    :math:`\delta_-` otherwise,

    .. math::

        y = m + s\,\frac{\sinh(\delta \operatorname{asinh} u)}{\delta},
        \qquad
        \log\Big|\frac{\partial y}{\partial x}\Big|
          = \log\cosh(\delta \operatorname{asinh}|u|) - \tfrac12 \log(1 + u^2).

    The slope is 1 at :math:`u = 0` from both sides, so the map is
    :math:`C^1`; it starts as the identity (:math:`\delta_\pm = 1`). For large
    :math:`|u|`, :math:`|y| \approx (2|u|)^\delta / (2\delta)`: a Gaussian tail
    :math:`e^{-u^2/2}` becomes :math:`e^{-c|y|^{2/\delta}}`.

    Why a flow here needs it: spline and affine layers are Lipschitz, and a
    Lipschitz map of a Gaussian keeps Gaussian tails (Jaini et al. 2020). A
    maximum-entropy answer with log statistics has *exponential* tails in the
    flow's coordinates (:math:`x^{\eta}` on the half-line is
    :math:`e^{(\eta + 1) y}` in :math:`y = \log x`; a Dirichlet coordinate with
    :math:`\alpha = 0.5` decays like :math:`e^{y/2}`), which :math:`\delta = 2`
    reproduces; even moments such as :math:`x^6` on :math:`\mathbb R` need
    lighter ones, :math:`\delta = 1/3`. The exponents are kept in
    (``DELTA_MIN``, ``DELTA_MAX``) = (0.25, 4) by a sigmoid. Compare the tail
    transform of Hickling & Prangle (2025), which targets power-law tails.

    Example:
        >>> layer = Tails(2)
        >>> x = torch.randn(5, 2)
        >>> y, ladj = layer(x)
        >>> bool(torch.allclose(y, x)), bool(torch.allclose(ladj, torch.zeros(5), atol=1e-6))
        (True, True)
    """

    def __init__(self, dim: int) -> None:
        super().__init__(positive_int("dim", dim))
        identity = math.log((1.0 - DELTA_MIN) / (DELTA_MAX - 1.0))  # sigmoid^-1 of delta = 1
        self.raw_delta = nn.Parameter(torch.full((2, dim), identity))  # rows: left, right
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))

    @property
    def delta(self) -> Tensor:
        """The exponents, shape ``(2, dim)``: row 0 the left tail, row 1 the right."""
        return DELTA_MIN + (DELTA_MAX - DELTA_MIN) * torch.sigmoid(self.raw_delta)

    def _side(self, u: Tensor) -> Tensor:
        left, right = self.delta.to(u.dtype)
        return torch.where(u > 0, right, left)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        scale = self.log_scale.exp()
        u = (x - self.loc) / scale
        delta = self._side(u)
        a = delta * torch.asinh(u)  # sinh and asinh are odd: no sign() whose derivative is 0 at u = 0
        y = self.loc + scale * torch.sinh(a) / delta
        return y, (_log_cosh(a.abs()) - 0.5 * torch.log1p(u * u)).sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        scale = self.log_scale.exp()
        v = (y - self.loc) / scale
        delta = self._side(v)  # u and v share their sign
        a = torch.asinh(delta * v)
        u = torch.sinh(a / delta)
        return self.loc + scale * u, -(_log_cosh(a.abs()) - 0.5 * torch.log1p(u * u)).sum(-1)
