"""Independent reference densities for the tests (numpy/scipy, float64, no project code)."""

from __future__ import annotations

import numpy as np
from scipy import integrate, stats
from scipy.special import expit


def soft_mixture_density_1d(
    z: float, weights: np.ndarray, mu: np.ndarray, sigma: np.ndarray, tau: float
) -> float:
    r"""Marginal density of the soft-selected base for K = 2 in 1D, by quadrature.

    With :math:`c_1 = \sigma(u)`, :math:`u = \operatorname{logit} c_1 =
    (\Delta + L)/\tau` where :math:`\Delta = \log(\alpha_1/\alpha_2)` and
    :math:`L = g_1 - g_2 \sim \mathrm{Logistic}(0, 1)`, so
    :math:`p(z) = \int f_L(t)\, \mathcal N(z; m(c_1), s(c_1))\, dt`,
    :math:`c_1 = \sigma((\Delta + t)/\tau)`.
    """
    delta = np.log(weights[0] / weights[1])

    def integrand(t: float) -> float:
        c1 = expit((delta + t) / tau)
        m = c1 * mu[0] + (1 - c1) * mu[1]
        s = c1 * sigma[0] + (1 - c1) * sigma[1]
        return stats.logistic.pdf(t) * stats.norm.pdf(z, m, s)

    value, _ = integrate.quad(integrand, -60, 60, points=[-delta], limit=400, epsabs=1e-13, epsrel=1e-10)
    return value


def mixture_density_1d(z: np.ndarray, weights: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Eq. 1 in 1D."""
    return sum(w * stats.norm.pdf(z, m, s) for w, m, s in zip(weights, mu, sigma, strict=True))


def soft_mixture_density_1d_many(
    z: np.ndarray, weights: np.ndarray, mu: np.ndarray, sigma: np.ndarray, tau: float
) -> np.ndarray:
    """:func:`soft_mixture_density_1d` for many points at once (trapezoid rule on a fine t grid)."""
    delta = np.log(weights[0] / weights[1])
    t = np.linspace(-40, 40, 40001)
    c1 = expit((delta + t) / tau)[:, None]
    m = c1 * mu[0] + (1 - c1) * mu[1]
    s = c1 * sigma[0] + (1 - c1) * sigma[1]
    integrand = stats.logistic.pdf(t)[:, None] * stats.norm.pdf(np.asarray(z)[None, :], m, s)
    return np.trapezoid(integrand, t, axis=0)
