r"""Diagnostics of importance weights: Kish's effective sample size and the PSIS Pareto shape k-hat.

The certificate (:mod:`~maxent_mdn.certify.dual`) and the exact sampler
(:mod:`~maxent_mdn.certify.gibbs`) weight the flow's draws by
:math:`w = \eta^\top T(x) - \log q(x)`; these two numbers say whether the
weighted estimates can be trusted: the ESS how many draws effectively carry
them, :math:`\hat k` whether the weights' variance is finite at all.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["ess_fraction", "pareto_k"]


def ess_fraction(weights: Tensor) -> float:
    r"""Kish's effective sample size of normalized weights, as a fraction of their number: :math:`1 / (n \sum_i p_i^2)`."""
    return float(1.0 / (weights.pow(2).sum() * weights.numel()))


def _gpd_shape(excess: np.ndarray) -> float:
    """Zhang & Stephens' (2009) empirical-Bayes estimate of the generalized Pareto shape, with PSIS's prior.

    ``excess``: positive exceedances over the tail's threshold, sorted ascending. Stable where maximum
    likelihood is not (a near-constant tail), as in Vehtari et al.'s PSIS.
    """
    n = excess.size
    m = 30 + int(math.sqrt(n))
    theta = 1.0 / excess[-1] + (1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))) / (
        3.0 * excess[int(n / 4 + 0.5) - 1]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.log1p(-theta[:, None] * excess).mean(axis=1)
        profile = n * (np.log(-theta / k) - k - 1.0)
    ok = np.isfinite(profile)
    if not ok.any():  # no candidate fits: an extreme tail
        return math.inf
    weights = np.exp(profile[ok] - profile[ok].max())  # the posterior weights of the candidate thetas
    theta_hat = float((theta[ok] * weights).sum() / weights.sum())
    shape = float(np.log1p(-theta_hat * excess).mean())
    return (n * shape + 10 * 0.5) / (n + 10)  # shrunk towards 1/2 by a weak prior


def pareto_k(log_weights: Tensor) -> float:
    r"""Shape :math:`\hat k` of a generalized Pareto fitted to the largest :math:`\min(n/5, 3\sqrt n)` weights.

    The PSIS diagnostic (Vehtari, Simpson, Gelman, Yao & Gabry): the
    importance weights have finite variance for :math:`k < 1/2`, and
    estimates are usable up to about :math:`k = 0.7`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> pareto_k(torch.randn(20000, generator=g, dtype=torch.float64)) < 0.3  # log-normal weights, light tail
        True
    """
    w = log_weights.double()
    n = w.numel()
    tail = max(5, min(n // 5, int(3 * math.sqrt(n))))
    top = torch.topk(w, tail + 1).values.flip(0).numpy()  # ascending; top[0] is the threshold
    if (
        not np.isfinite(top).all() or top[-1] - top[0] > 700.0
    ):  # weights beyond float64's range: no finite tail
        return math.inf
    excess = np.exp(top[1:] - top[0]) - 1.0
    excess = excess[excess > 0]
    if excess.size < 5:
        return -math.inf  # (nearly) constant weights: no tail at all
    return _gpd_shape(excess)
