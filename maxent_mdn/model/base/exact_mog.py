r"""Exact mixture of Gaussians with implicit reparameterization gradients: the fair τ → 0 baseline."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from ..._checks import positive_float, positive_int
from .core import BaseDistribution
from .estimators import check_estimator, mixture_log_prob

__all__ = ["ExactMoG"]

_LOG_2PI = math.log(2.0 * math.pi)


class ExactMoG(BaseDistribution):
    r"""Mixture :math:`\sum_k \alpha_k \mathcal N(\mu_k, \operatorname{diag}\sigma_k^2)` with exact samples and density.

    Samples are drawn from the mixture itself (component :math:`k \sim \alpha`,
    then :math:`z = \mu_k + \sigma_k \odot \varepsilon`); the density is eq. 1.
    Gradients reach :math:`\alpha`, :math:`\mu` and :math:`\sigma` through the
    samples by **implicit reparameterization** (Figurnov, Mohamed & Mnih 2018)
    of the distributional (Rosenblatt) transform
    :math:`u = F(z; \theta)`, :math:`F_d = P(Z_d \le z_d \mid z_{<d})`:

    .. math::

        F_d(z) = \sum_k w_{kd}(z_{<d})\, \Phi\!\Big(\frac{z_d - \mu_{kd}}{\sigma_{kd}}\Big),
        \qquad
        w_{kd} \propto \alpha_k \prod_{d' < d} \mathcal N(z_{d'}; \mu_{kd'}, \sigma_{kd'}),

    and holding :math:`u` fixed, :math:`\frac{dz}{d\theta} = -J^{-1}\frac{\partial F}{\partial\theta}`
    with the lower-triangular :math:`J = \partial F/\partial z`
    (:math:`J_{dd} = p(z_d \mid z_{<d})`,
    :math:`J_{dd'} = \sum_k w_{kd}(s_{kd'} - \bar s_{dd'})\Phi_{kd}` for
    :math:`d' < d`, :math:`s_{kd'} = -(z_{d'} - \mu_{kd'})/\sigma_{kd'}^2`).
    It is applied through the surrogate
    :math:`z - J^{-1}_{\text{stop}}\,(F(z;\theta) - F(z;\theta)_{\text{stop}})`, whose value is
    :math:`z` and whose gradient is the implicit one. Works for every
    :math:`D \ge 1`; cost :math:`O(nKD^2)` per batch.

    Every ``estimator`` returns the exact density: there is nothing to estimate.

    Args:
        dim: dimension :math:`D`.
        components: number of components :math:`K`.
        spread: standard deviation of the random initial means.

    Example:
        >>> base = ExactMoG(dim=2, components=3)
        >>> z, log_p = base.rsample_and_log_prob(64)
        >>> z.shape, log_p.shape
        (torch.Size([64, 2]), torch.Size([64]))
    """

    def __init__(self, dim: int, components: int, spread: float = 1.0) -> None:
        super().__init__(positive_int("dim", dim))
        self.components = positive_int("components", components)
        positive_float("spread", spread)
        self.logits = nn.Parameter(torch.zeros(components))
        self.mu = nn.Parameter(spread * torch.randn(components, dim))
        self.log_sigma = nn.Parameter(torch.zeros(components, dim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, components={self.components}"

    @property
    def log_weights(self) -> Tensor:
        r""":math:`\log\alpha`, shape ``(K,)``."""
        return torch.log_softmax(self.logits, -1)

    def conditional_cdf(self, z: Tensor) -> tuple[Tensor, Tensor]:
        r"""The Rosenblatt transform :math:`F(z)` ``(n, D)`` and its Jacobian :math:`\partial F/\partial z` ``(n, D, D)``.

        The Jacobian is computed in closed form (lower triangular) and carries
        no gradient; :math:`F` carries gradients to the parameters.
        """
        sigma = self.log_sigma.exp()
        w_std = (z.unsqueeze(1) - self.mu) / sigma  # (n, K, D)
        log_n = -0.5 * w_std.pow(2) - self.log_sigma - 0.5 * _LOG_2PI  # (n, K, D)
        # log w_kd: prior weight times the likelihood of the earlier coordinates
        prefix = torch.cumsum(log_n, -1) - log_n  # exclusive cumulative sum over d
        log_w = torch.log_softmax(self.log_weights.unsqueeze(-1) + prefix, dim=1)  # (n, K, D)
        w = log_w.exp()
        phi = Normal(0.0, 1.0).cdf(w_std)
        cdf = (w * phi).sum(1)
        with torch.no_grad():
            score = -w_std / sigma  # d log N / dz, (n, K, D)
            # p(z_d | z_<d); clamped because a far-tail coordinate's density may round to 0
            cond_density = (w * log_n.exp()).sum(1).clamp_min(torch.finfo(z.dtype).tiny)
            # J[n, d, d'] = sum_k w[n,k,d] (score[n,k,d'] - mean_score[n,d,d']) phi[n,k,d], d' < d
            mean_score = torch.einsum("nkd,nke->nde", w, score)
            jac = torch.einsum("nkd,nke->nde", w * phi, score) - (w * phi).sum(1).unsqueeze(-1) * mean_score
            jac = torch.tril(jac, diagonal=-1) + torch.diag_embed(cond_density)
        return cdf, jac

    def _sample_exact(self, n: int) -> Tensor:
        with torch.no_grad():
            k = torch.multinomial(self.log_weights.exp(), n, replacement=True)
            eps = torch.randn(n, self.dim, dtype=self.mu.dtype, device=self.mu.device)
            return self.mu[k] + self.log_sigma.exp()[k] * eps

    def rsample_and_log_prob(self, n: int, estimator: str | None = "exact") -> tuple[Tensor, Tensor]:
        r"""``n`` exact mixture samples with implicit-reparameterization gradients, and eq. 1."""
        positive_int("n", n)
        if estimator is not None:
            check_estimator(estimator)
        z0 = self._sample_exact(n)
        if torch.is_grad_enabled():
            cdf, jac = self.conditional_cdf(z0)
            residual = (cdf - cdf.detach()).unsqueeze(-1)
            z = z0 - torch.linalg.solve_triangular(jac, residual, upper=False).squeeze(-1)
        else:
            z = z0
        log_p = z.new_zeros(n) if estimator is None else self.exact_log_prob(z)
        return z, log_p

    def log_prob(self, z: Tensor, **_: object) -> Tensor:
        """Exact log-density (eq. 1), shape ``z.shape[:-1]``."""
        return self.exact_log_prob(z)

    def exact_log_prob(self, z: Tensor) -> Tensor:
        r"""Eq. 1, :math:`\log\sum_k \alpha_k \mathcal N(z; \mu_k, \sigma_k)`."""
        self._check_points(z)
        flat = z.reshape(-1, self.dim)
        return mixture_log_prob(flat, self.logits, self.mu, self.log_sigma.exp()).reshape(z.shape[:-1])
