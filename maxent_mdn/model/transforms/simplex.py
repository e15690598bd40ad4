r"""The MEFN simplex map :math:`\mathbb R^{D-1} \to \Delta^{D-1}`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints

from ..._checks import positive_int
from .core import Transform

__all__ = ["SimplexMap", "StickBreaking"]


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


class StickBreaking(Transform):
    r"""Stick-breaking map onto the open simplex (Stan's and ``torch.distributions``' simplex bijector).

    With :math:`n = D - 1` inputs and offsets chosen so that :math:`y = 0` lands on the centre,

    .. math::

        v_i = \sigma\!\big(y_i - \log(n + 1 - i)\big), \qquad
        x_i = v_i \prod_{j<i} (1 - v_j)\ (i \le n), \qquad
        x_D = \prod_{j \le n} (1 - v_j),

        \log|\det J| = \sum_{i=1}^{n} \big[\log x_i + \log(1 - v_i)\big],

    (the Jacobian of :math:`(x_1, \dots, x_{D-1})` is lower triangular with
    :math:`\partial x_i/\partial y_i = x_i (1 - v_i)`). Everything is computed from
    log-sigmoids, so no coordinate underflows to zero before the clamp.

    Why it exists beside :class:`SimplexMap`: a Dirichlet is a product of
    independent Betas in stick-breaking coordinates,
    :math:`v_i \sim \mathrm{Beta}(\alpha_i, \sum_{j>i} \alpha_j)`, so the
    maximum-entropy answer under :math:`\mathbb E \log x_i` constraints is a
    *product* density in :math:`y` and the flow only has to learn :math:`D-1`
    one-dimensional maps. Under the additive-logistic map every coordinate is
    coupled to every other through :math:`x_D`.

    Example:
        >>> x, ladj = StickBreaking(2)(torch.zeros(1, 2))
        >>> x
        tensor([[0.3333, 0.3333, 0.3333]])
    """

    codomain = constraints.simplex

    def __init__(self, dim: int) -> None:
        super().__init__(positive_int("dim", dim))
        offset = torch.arange(dim, 0, -1, dtype=torch.get_default_dtype()).log()
        self.register_buffer("offset", offset, persistent=False)  # a constant of dim, not state

    @property
    def dim_out(self) -> int:
        return self.dim + 1

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        u = y - self.offset.to(y.dtype)
        log_v, log_rest = F.logsigmoid(u), F.logsigmoid(-u)  # log v_i, log(1 - v_i)
        left = F.pad(torch.cumsum(log_rest, -1), (1, 0))  # log prod_{j<i} (1 - v_j), i = 1..D
        log_x = F.pad(log_v, (0, 1)) + left
        x = log_x.exp().clamp_min(torch.finfo(y.dtype).tiny)
        return x, (log_x[..., :-1] + log_rest).sum(-1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_x = x.log()
        # log sum_{j>i} x_j, i = 1..n: a reversed cumulative logsumexp
        tail = torch.logcumsumexp(log_x.flip(-1), -1).flip(-1)[..., 1:]
        u = log_x[..., :-1] - tail  # logit v_i
        return u + self.offset.to(x.dtype), -(log_x[..., :-1] + F.logsigmoid(-u)).sum(-1)
