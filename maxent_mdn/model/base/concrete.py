r"""Concrete (Gumbel-softmax) densities, computed in log space.

For :math:`c = \operatorname{softmax}((\log\alpha + g)/\tau)` with Gumbel noise
:math:`g`, Maddison et al. (2017) give the density of :math:`y = \log c`
(ExpConcrete), with respect to Lebesgue measure on the first :math:`K-1`
coordinates of :math:`y`:

.. math::

    \log p(y) = \log (K-1)! + (K-1)\log\tau
                + \sum_k (\log\alpha_k - \tau y_k)
                - K \operatorname{logsumexp}_k(\log\alpha_k - \tau y_k).

The Concrete density of :math:`c` on the simplex (first :math:`K-1`
coordinates) follows from the Jacobian :math:`\prod_k c_k` of
:math:`y \mapsto c`:

.. math::

    \log p(c) = \log p(y) - \textstyle\sum_k y_k.

Passing :math:`y` (from ``log_softmax``) instead of :math:`c` keeps both
finite when some :math:`c_k` underflows to 0 in floating point, where
:meth:`torch.distributions.RelaxedOneHotCategorical.log_prob` returns
``inf``/``nan``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["concrete_log_prob", "exp_concrete_log_prob"]


def exp_concrete_log_prob(log_c: Tensor, logits: Tensor, tau: float | Tensor) -> Tensor:
    r"""ExpConcrete log-density of :math:`y = \log c`, shape ``log_c.shape[:-1]``.

    Args:
        log_c: log of the relaxed one-hot sample, shape ``(..., K)``.
        logits: unnormalized :math:`\log\alpha`, shape ``(K,)``.
        tau: temperature :math:`\tau > 0`.

    Example:
        >>> y = torch.log_softmax(torch.randn(4, 3), -1)
        >>> exp_concrete_log_prob(y, torch.zeros(3), 0.5).shape
        torch.Size([4])
    """
    k = log_c.shape[-1]
    tau = torch.as_tensor(tau, dtype=log_c.dtype, device=log_c.device)
    a = torch.log_softmax(logits, -1) - tau * log_c
    return math.lgamma(k) + (k - 1) * torch.log(tau) + a.sum(-1) - k * torch.logsumexp(a, -1)


def concrete_log_prob(log_c: Tensor, logits: Tensor, tau: float | Tensor) -> Tensor:
    r"""Concrete log-density of :math:`c` (eq. 2 of the design note), from :math:`\log c`.

    Example:
        >>> y = torch.log_softmax(torch.randn(4, 3), -1)
        >>> concrete_log_prob(y, torch.zeros(3), 0.5).shape
        torch.Size([4])
    """
    return exp_concrete_log_prob(log_c, logits, tau) - log_c.sum(-1)
