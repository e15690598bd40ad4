r"""Coupling layers (Dinh et al. 2017; Durkan et al. 2019).

The input is split into a conditioning part :math:`x_a` (the first
``dim // 2`` coordinates) and a transformed part :math:`x_b`; :math:`x_b` goes
through an element-wise bijection whose parameters are a function of
:math:`x_a`. The Jacobian is block-triangular, so
:math:`\log|\det J| = \sum_d \log|\partial y_{b,d}/\partial x_{b,d}|`.
Alternate couplings with :class:`~maxent_mdn.model.transforms.Permutation` so
every coordinate is transformed. In one dimension :math:`x_a` is empty and the
parameters are learned constants.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._checks import positive_float, positive_int
from .core import Transform
from .nets import MLP
from .spline import packed_spline

__all__ = ["AffineCoupling", "SplineCoupling"]


class _Coupling(Transform):
    def __init__(self, dim: int, params_per_dim: int, hidden: int, depth: int) -> None:
        super().__init__(positive_int("dim", dim))
        self.split = dim // 2
        self.params_per_dim = params_per_dim
        self.conditioner = MLP(self.split, (dim - self.split) * params_per_dim, hidden, depth)

    def _params(self, xa: Tensor) -> Tensor:
        out = self.conditioner(xa)
        return out.reshape(xa.shape[0], self.dim - self.split, self.params_per_dim)

    def _couple(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        xa, xb = x[..., : self.split], x[..., self.split :]
        yb, ladj = self._elementwise(xb, self._params(xa), inverse)
        return torch.cat([xa, yb], -1), ladj.sum(-1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(x, inverse=False)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(y, inverse=True)

    def _elementwise(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        raise NotImplementedError  # pragma: no cover


class AffineCoupling(_Coupling):
    r"""Affine coupling :math:`y_b = x_b \odot e^{s(x_a)} + t(x_a)`, :math:`\log|\det| = \sum s`.

    The log-scale is soft-clamped, :math:`s = c \tanh(\tilde s / c)`, to keep
    early training stable.

    Example:
        >>> layer = AffineCoupling(4)
        >>> x = torch.randn(3, 4)
        >>> torch.allclose(layer.inverse(layer(x)[0])[0], x)
        True
    """

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, scale_clamp: float = 3.0) -> None:
        super().__init__(dim, 2, hidden, depth)
        self.scale_clamp = positive_float("scale_clamp", scale_clamp)

    def _elementwise(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        s = self.scale_clamp * torch.tanh(params[..., 0] / self.scale_clamp)
        t = params[..., 1]
        if inverse:
            return (x - t) * torch.exp(-s), -s
        return x * s.exp() + t, s


class SplineCoupling(_Coupling):
    r"""Rational-quadratic spline coupling (Durkan et al. 2019, "Neural Spline Flows").

    Each transformed coordinate goes through a monotone rational-quadratic
    spline with ``bins`` bins on :math:`[-B, B]` (``bound``) and the identity
    outside, with knot widths, heights and interior derivatives given by the
    conditioner. The default :math:`B = 10` matters: the identity tails pass the
    base's Gaussian tails through, and a maximum-likelihood fit of
    Dirichlet(1, 2, 3) in logit space reached a reverse KL of 0.020 with
    :math:`B = 5`, 0.0019 with :math:`B = 8` and 0.0001 with :math:`B = 12` (see :func:`~maxent_mdn.model.transforms.spline.rational_quadratic_spline`).

    Example:
        >>> layer = SplineCoupling(2, bins=4)
        >>> x = torch.randn(3, 2)
        >>> torch.allclose(layer.inverse(layer(x)[0])[0], x, atol=1e-5)
        True
    """

    def __init__(
        self, dim: int, bins: int = 8, bound: float = 10.0, hidden: int = 64, depth: int = 2
    ) -> None:
        self.bins = positive_int("bins", bins)
        super().__init__(dim, 3 * bins - 1, hidden, depth)
        self.bound = positive_float("bound", bound)

    def _elementwise(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        return packed_spline(x, params, self.bound, inverse)
