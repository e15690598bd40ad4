r"""The MEFN simplex map :math:`\mathbb R^{D-1} \to \Delta^{D-1}`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints

from ..._checks import positive_int
from .core import Transform

__all__ = ["SimplexMap"]


class SimplexMap(Transform):
    r"""Additive-logistic map onto the open simplex (Loaiza-Ganem et al. 2017).

    .. math::

        x_i = \frac{e^{y_i}}{1 + \sum_j e^{y_j}}\ (i < D), \qquad
        x_D = \frac{1}{1 + \sum_j e^{y_j}}, \qquad
        \log|\det J| = \sum_{i=1}^{D} \log x_i,

    where :math:`J` is the Jacobian of the first :math:`D-1` output
    coordinates: densities of simplex points are with respect to Lebesgue
    measure on :math:`(x_1, \dots, x_{D-1})`. Input has ``dim`` coordinates,
    output ``dim + 1`` (all of them, summing to one).

    Example:
        >>> x, ladj = SimplexMap(2)(torch.zeros(1, 2))
        >>> x
        tensor([[0.3333, 0.3333, 0.3333]])
    """

    codomain = constraints.simplex

    def __init__(self, dim: int) -> None:
        super().__init__(positive_int("dim", dim))

    @property
    def dim_out(self) -> int:
        return self.dim + 1

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        padded = F.pad(y, (0, 1))  # append the reference coordinate 0
        log_x = torch.log_softmax(padded, -1)
        # keep every coordinate a positive float: exp would round a far-tail point to exactly 0,
        # and statistics such as log x would turn into -inf
        x = log_x.exp().clamp_min(torch.finfo(y.dtype).tiny)
        return x, log_x.sum(-1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_x = x.log()
        y = log_x[..., :-1] - log_x[..., -1:]
        return y, -log_x.sum(-1)
