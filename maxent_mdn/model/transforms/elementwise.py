r"""Element-wise bijections: learnable affine/ActNorm and the support maps.

The support maps take :math:`\mathbb R^D` onto a constrained set:

* :class:`Exp`: :math:`y = e^x`, :math:`\log|\det| = \sum x` (onto :math:`(0,\infty)^D`).
* :class:`Softplus`: :math:`y = \log(1 + e^x)`, :math:`\log|\det| = \sum \log\sigma(x)`.
* :class:`Sigmoid`: :math:`y = a + (b-a)\sigma(x)`,
  :math:`\log|\det| = \sum \log(b-a) + \log\sigma(x) + \log\sigma(-x)` (onto :math:`(a,b)^D`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import constraints

from ..._checks import positive_int
from .core import Transform

__all__ = ["ActNorm", "ElementwiseAffine", "Exp", "Sigmoid", "Softplus", "Standardize"]


class ElementwiseAffine(Transform):
    r"""Learnable :math:`y = x \odot e^{s} + t`, :math:`\log|\det| = \sum_d s_d`.

    Starts as the identity.

    Example:
        >>> y, ladj = ElementwiseAffine(2)(torch.randn(4, 2))
        >>> ladj.shape
        torch.Size([4])
    """

    def __init__(self, dim: int) -> None:
        super().__init__(positive_int("dim", dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = x * self.log_scale.exp() + self.shift
        return y, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = (y - self.shift) * torch.exp(-self.log_scale)
        return x, (-self.log_scale.sum()).expand(y.shape[0])


class Standardize(Transform):
    r"""A fixed :math:`y = m + s \odot x`, :math:`\log|\det| = \sum_d \log s_d` (buffers, not parameters).

    Puts a flow that starts near the standard normal onto the scale of the
    problem: the solver derives :math:`m, s` from the targets (a mean, a
    covariance's diagonal), so the learnable layers only shape the answer, and
    a mean of 10 or a standard deviation of 1000 need not be reached by
    gradient steps (nor pass the splines' identity tails).

    Example:
        >>> layer = Standardize([10.0, 0.0], [2.0, 1.0])
        >>> y, ladj = layer(torch.zeros(3, 2))
        >>> y[0].tolist(), round(float(ladj[0]), 4)
        ([10.0, 0.0], 0.6931)
    """

    def __init__(self, loc: list[float] | Tensor, scale: list[float] | Tensor) -> None:
        loc_ = torch.as_tensor(loc, dtype=torch.get_default_dtype()).reshape(-1)
        scale_ = torch.as_tensor(scale, dtype=torch.get_default_dtype()).reshape(-1)
        if loc_.shape != scale_.shape:
            raise ValueError(
                f"loc and scale must have one entry per coordinate, got {loc_.numel()} and {scale_.numel()}"
            )
        if not (torch.isfinite(loc_).all() and torch.isfinite(scale_).all() and (scale_ > 0).all()):
            raise ValueError("Standardize needs finite locations and positive, finite scales")
        super().__init__(loc_.numel())
        self.register_buffer("loc", loc_)
        self.register_buffer("scale", scale_)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.loc + self.scale * x, self.scale.log().sum().expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return (y - self.loc) / self.scale, (-self.scale.log().sum()).expand(y.shape[0])


class ActNorm(ElementwiseAffine):
    r""":class:`ElementwiseAffine` initialised from the first batch it sees (Kingma & Dhariwal 2018).

    On the first forward pass in training mode it sets :math:`s, t` so the
    output has zero mean and unit variance per coordinate, then trains as
    usual. The flag is a buffer, so a reloaded model does not re-initialise.

    Example:
        >>> layer = ActNorm(2)
        >>> y, _ = layer(3 + 2 * torch.randn(512, 2))
        >>> bool(y.mean(0).abs().max() < 1e-4)
        True
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized) and x.shape[0] > 1:
            with torch.no_grad():
                std = x.std(0).clamp_min(1e-6)
                self.log_scale.copy_(-std.log())
                self.shift.copy_(-x.mean(0) / std)
                self.initialized.fill_(True)
        return super().forward(x)


class Exp(Transform):
    r""":math:`y = e^x` onto :math:`(0, \infty)^D`; :math:`\log|\det| = \sum_d x_d`.

    Example:
        >>> Exp(1)(torch.zeros(2, 1))[0]
        tensor([[1.],
                [1.]])
    """

    codomain = constraints.independent(constraints.positive, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # a far-tail point would round to exactly 0, outside the support (and log 0 = -inf)
        return x.exp().clamp_min(torch.finfo(x.dtype).tiny), x.sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = y.log()
        return x, -x.sum(-1)


class Softplus(Transform):
    r""":math:`y = \log(1 + e^x)` onto :math:`(0, \infty)^D`; :math:`\log|\det| = \sum_d \log\sigma(x_d)`.

    Example:
        >>> Softplus(1)(torch.zeros(1, 1))[0]
        tensor([[0.6931]])
    """

    codomain = constraints.independent(constraints.positive, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return F.softplus(x), F.logsigmoid(x).sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = y + torch.log(-torch.expm1(-y))  # log(e^y - 1), stable for large y
        return x, -F.logsigmoid(x).sum(-1)


class Sigmoid(Transform):
    r""":math:`y = a + (b - a)\,\sigma(x)` onto :math:`(a, b)^D`.

    :math:`\log|\det| = \sum_d \log(b-a) + \log\sigma(x_d) + \log\sigma(-x_d)`.

    Example:
        >>> Sigmoid(1, low=-1.0, high=1.0)(torch.zeros(1, 1))[0]
        tensor([[0.]])
    """

    def __init__(self, dim: int, low: float = 0.0, high: float = 1.0) -> None:
        super().__init__(dim)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"Sigmoid needs finite low < high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    @property
    def codomain(self) -> constraints.Constraint:
        """The box :math:`(a, b)^D`."""
        return constraints.independent(constraints.interval(self.low, self.high), 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        width = self.high - self.low
        y = self.low + width * torch.sigmoid(x)
        ladj = (math.log(width) + F.logsigmoid(x) + F.logsigmoid(-x)).sum(-1)
        return y, ladj

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        u = (y - self.low) / (self.high - self.low)
        x = torch.log(u) - torch.log1p(-u)
        ladj = (math.log(self.high - self.low) + F.logsigmoid(x) + F.logsigmoid(-x)).sum(-1)
        return x, -ladj
