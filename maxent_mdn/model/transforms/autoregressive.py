r"""Inverse-autoregressive rational-quadratic splines (Kingma et al. 2016; Durkan et al. 2019; Germain et al. 2015).

Each output coordinate goes through a monotone rational-quadratic spline whose
parameters depend on the *earlier input* coordinates only,

.. math::

    x_d = s\big(z_d;\ \theta_d(z_{<d})\big), \qquad
    \log|\det \partial x/\partial z| = \sum_d \log s'\big(z_d;\ \theta_d(z_{<d})\big),

with :math:`\theta = (\theta_1, \dots, \theta_D)` from one masked network
(MADE): the Jacobian is triangular. This is the sampling direction of the
maximum-entropy solver (:math:`z \mapsto x`, one network pass, the log-det on
the way), which is why it is the inverse-autoregressive form: every coordinate
is transformed in every layer, where a coupling leaves half of them unchanged.
The price is the density of a given point, :math:`x \mapsto z`, which takes
:math:`D` passes (coordinate :math:`d` needs :math:`z_{<d}` first); the solver
evaluates it only for certificates and figures, not per training step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..._checks import positive_float, positive_int
from .core import Transform
from .spline import packed_spline

__all__ = ["AutoregressiveSpline", "MaskedMLP"]


class _MaskedLinear(nn.Linear):
    def __init__(self, mask: Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class MaskedMLP(nn.Module):
    r"""MADE: an MLP :math:`\mathbb R^D \to \mathbb R^{D \times P}` whose output ``[:, d]`` depends on inputs ``< d`` only.

    Input :math:`i` has degree :math:`i + 1`, hidden unit :math:`j` degree
    :math:`1 + (j \bmod \max(D - 1, 1))`, and output block :math:`d` degree
    :math:`d + 1`; a weight is kept where the degree of its output is at least
    that of its input (strictly greater into the outputs). The last layer
    starts at zero, so an autoregressive layer starts as the identity; the
    first output block (no inputs before it) is then a learned constant
    through the bias.

    Example:
        >>> net = MaskedMLP(3, 2, hidden=8)
        >>> jac = torch.autograd.functional.jacobian(lambda z: net(z[None])[0, :, 0], torch.randn(3))
        >>> bool((jac.triu() == 0).all())  # output d has no path from inputs d, d + 1, ...
        True
    """

    def __init__(self, dim: int, params_per_dim: int, hidden: int = 64, depth: int = 2) -> None:
        super().__init__()
        self.dim, self.params_per_dim = (
            positive_int("dim", dim),
            positive_int("params_per_dim", params_per_dim),
        )
        hidden, depth = positive_int("hidden", hidden), positive_int("depth", depth)
        inputs = torch.arange(1, dim + 1)
        units = 1 + torch.arange(hidden) % max(dim - 1, 1)
        outputs = torch.arange(1, dim + 1).repeat_interleave(params_per_dim)
        layers: list[nn.Module] = []
        previous = inputs
        for _ in range(depth):
            layers += [_MaskedLinear(units[:, None] >= previous[None, :]), nn.SiLU()]
            previous = units
        last = _MaskedLinear(outputs[:, None] > previous[None, :])
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).reshape(z.shape[0], self.dim, self.params_per_dim)


class AutoregressiveSpline(Transform):
    r"""An inverse-autoregressive rational-quadratic spline layer on :math:`\mathbb R^D`.

    :math:`x_d = s(z_d; \theta_d(z_{<d}))` with ``bins`` bins on :math:`[-B, B]`
    (``bound``; the identity outside), the spline parameters from a
    :class:`MaskedMLP`. :meth:`forward` (sampling) is one pass; :meth:`inverse`
    (density) takes :math:`D` passes. Alternate layers with a
    :class:`~maxent_mdn.model.transforms.Permutation` so that every coordinate
    conditions every other.

    Example:
        >>> layer = AutoregressiveSpline(3, bins=4)
        >>> z = torch.randn(5, 3)
        >>> x, ladj = layer(z)
        >>> z_back, ladj_back = layer.inverse(x)
        >>> torch.allclose(z_back, z, atol=1e-5), torch.allclose(ladj_back, -ladj, atol=1e-5)
        (True, True)
    """

    def __init__(
        self, dim: int, bins: int = 8, bound: float = 10.0, hidden: int = 64, depth: int = 2
    ) -> None:
        super().__init__(positive_int("dim", dim))
        self.bins = positive_int("bins", bins)
        self.bound = positive_float("bound", bound)
        self.conditioner = MaskedMLP(dim, 3 * bins - 1, hidden, depth)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x, log_deriv = packed_spline(z, self.conditioner(z), self.bound)
        return x, log_deriv.sum(-1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """:math:`z` from :math:`x` coordinate by coordinate (``D`` passes) and :math:`\\log|\\det \\partial z/\\partial x|`."""
        z = torch.zeros_like(x)
        columns, logs = [], []
        for d in range(self.dim):
            params = self.conditioner(z)[:, d]  # depends on z[:, :d], already final
            zd, log_deriv = packed_spline(x[:, d], params, self.bound, inverse=True)
            columns.append(zd)
            logs.append(log_deriv)
            z = torch.cat([torch.stack(columns, -1), x.new_zeros(x.shape[0], self.dim - d - 1)], -1)
        return z, torch.stack(logs, -1).sum(-1)
