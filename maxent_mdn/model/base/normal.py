"""Standard normal base: the plain flow's base (MEFN), same interface as the mixtures."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..._checks import positive_int
from .core import BaseDistribution

__all__ = ["StandardNormal"]

_LOG_2PI = math.log(2.0 * math.pi)


class StandardNormal(BaseDistribution):
    r"""Standard normal :math:`\mathcal N(0, I_D)` with :math:`\log p(z) = -\tfrac12\|z\|^2 - \tfrac D2\log 2\pi`.

    Has no parameters; every ``estimator`` returns the exact density, so
    experiments can swap it for :class:`GumbelMoG` without other changes.

    Example:
        >>> base = StandardNormal(2)
        >>> z, log_p = base.rsample_and_log_prob(5)
        >>> z.shape, log_p.shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, dim: int) -> None:
        super().__init__(positive_int("dim", dim))
        # a buffer fixes the device and dtype of samples (moves with .to())
        self.register_buffer("_anchor", torch.zeros(()))

    def rsample_and_log_prob(self, n: int, estimator: str | None = "nested") -> tuple[Tensor, Tensor]:
        """``n`` samples and their exact log-density (``estimator`` is accepted and ignored)."""
        z = torch.randn(n, self.dim, dtype=self._anchor.dtype, device=self._anchor.device)
        return z, self.exact_log_prob(z)

    def log_prob(self, z: Tensor, **_: object) -> Tensor:
        """Exact log-density, shape ``z.shape[:-1]``."""
        return self.exact_log_prob(z)

    def exact_log_prob(self, z: Tensor) -> Tensor:
        """Exact log-density, shape ``z.shape[:-1]``."""
        self._check_points(z)
        return -0.5 * z.pow(2).sum(-1) - 0.5 * self.dim * _LOG_2PI
