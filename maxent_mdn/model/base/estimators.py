r"""Base-density estimators for the Gumbel-softmax mixture.

The soft-selected base :math:`z_0 = c^\top\mu + \omega \cdot c^\top\sigma` has
the marginal :math:`p(z_0) = \mathbb E_c[\mathcal N(z_0; c^\top\mu, c^\top\sigma)]`,
which has no closed form for :math:`\tau > 0`. The estimators:

``"nested"``
    :math:`\log \frac1n \sum_{j=1}^n \mathcal N(z_{0,i}; \mu_j, \sigma_j)` over the
    batch's own selections, own term :math:`j = i` included. By the SIVI
    argument (Yin & Zhou 2018) :math:`\mathbb E[\log\hat p_n] \ge \mathbb E[\log p]`
    and it is non-increasing in :math:`n`: :math:`-\text{mean}\log\hat p` is a
    *lower bound* on the entropy that tightens as the batch grows, safe to
    maximize. Unbounded for likelihood training (:math:`\sigma \to 0`).
``"loo"``
    Leave-one-out: the :math:`j = i` term removed, mean over :math:`n-1`. The
    mean inside the log is unbiased; the log is biased low by about
    :math:`\operatorname{Var}/(2np^2)` (Jensen). The right choice for likelihood.
``"independent"``
    A fresh nested batch of selections independent of the samples; same bias
    as ``"loo"``, any nested size.
``"exact"``
    Eq. 1, :math:`\log\sum_k \alpha_k \mathcal N(z_0; \mu_k, \sigma_k)`: the
    :math:`\tau \to 0` limit, *not* the density of soft samples for :math:`\tau > 0`.
``"concrete-joint"``
    Eq. 2 (corrected): :math:`\log \mathrm{Concrete}(c \mid \alpha, \tau)
    + \log \mathcal N(z_0; c^\top\mu, c^\top\sigma)`, the density of the pair
    :math:`(c, z_0)`. Its negative mean estimates the *joint* entropy, not the
    entropy of :math:`z_0`; kept for the ablation that shows the difference.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..._checks import choice
from .kernels import gaussian_log_density_matrix

__all__ = ["ESTIMATORS", "check_estimator", "diag_normal_log_prob", "mixture_log_prob"]

ESTIMATORS: tuple[str, ...] = ("nested", "loo", "independent", "exact", "concrete-joint")

_LOG_2PI = math.log(2.0 * math.pi)


def check_estimator(name: str) -> str:
    """Return ``name`` if it is a known estimator, else raise a ``ValueError`` listing them."""
    return choice("estimator", name, ESTIMATORS)


def mixture_log_prob(z: Tensor, logits: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    r"""Eq. 1: :math:`\log \sum_k \operatorname{softmax}(\text{logits})_k \mathcal N(z; \mu_k, \sigma_k)`.

    Args:
        z: points ``(n, D)``; logits ``(K,)``; loc, scale ``(K, D)``.

    Example:
        >>> mixture_log_prob(torch.zeros(2, 1), torch.zeros(2), torch.zeros(2, 1), torch.ones(2, 1))
        tensor([-0.9189, -0.9189])
    """
    ell = gaussian_log_density_matrix(z, loc, scale)
    return torch.logsumexp(ell + torch.log_softmax(logits, -1), dim=-1)


def diag_normal_log_prob(z: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    r"""Row-wise :math:`\log \mathcal N(z_i; m_i, \operatorname{diag} s_i^2)`, shape ``(n,)``.

    Example:
        >>> diag_normal_log_prob(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1))
        tensor([-0.9189])
    """
    w = (z - loc) / scale
    return -0.5 * w.pow(2).sum(-1) - scale.log().sum(-1) - 0.5 * z.shape[-1] * _LOG_2PI
