"""ExactMoG: exact mixture samples, and implicit-reparameterization gradients against quadrature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from maxent_mdn import ExactMoG, make_flow


def _mixture(dim: int, k: int, seed: int) -> ExactMoG:
    torch.manual_seed(seed)
    base = ExactMoG(dim, k).double()
    with torch.no_grad():
        base.logits.copy_(0.7 * torch.randn(k))
        base.mu.copy_(2.0 * torch.randn(k, dim))
        base.log_sigma.copy_(0.4 * torch.randn(k, dim))
    return base


def _grid_density(base: ExactMoG, points: torch.Tensor) -> torch.Tensor:
    """Eq. 1 from torch.distributions.Normal, independent of the project's kernels; differentiable."""
    comp = torch.distributions.Normal(base.mu, base.log_sigma.exp())  # (K, D)
    log_n = comp.log_prob(points.unsqueeze(-2)).sum(-1)  # (..., K)
    return torch.logsumexp(log_n + torch.log_softmax(base.logits, -1), -1).exp()


def _f1(z: torch.Tensor) -> torch.Tensor:
    return torch.sin(2 * z[..., 0]) + 0.3 * z[..., 0] ** 2


def _f2(z: torch.Tensor) -> torch.Tensor:
    return torch.sin(z[..., 0]) * torch.cos(z[..., 1]) + 0.2 * z[..., 0] * z[..., 1] + 0.1 * z[..., 1] ** 2


@pytest.mark.parametrize(("dim", "f"), [(1, _f1), (2, _f2)])
def test_pathwise_gradient_matches_quadrature(dim: int, f: object) -> None:
    base = _mixture(dim, 3, seed=dim)
    params = (base.logits, base.mu, base.log_sigma)
    axis = torch.linspace(-14, 14, 20001 if dim == 1 else 701, dtype=torch.float64)
    if dim == 1:
        pts = axis.unsqueeze(-1)
        exact_value = torch.trapezoid(f(pts) * _grid_density(base, pts), axis)
    else:
        pts = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1)
        integrand = f(pts) * _grid_density(base, pts)
        exact_value = torch.trapezoid(torch.trapezoid(integrand, axis, dim=1), axis)
    exact = torch.cat([g.flatten() for g in torch.autograd.grad(exact_value, params)])
    torch.manual_seed(0)
    estimates = []
    for _ in range(24):
        z, _ = base.rsample_and_log_prob(20000)
        grads = torch.autograd.grad(f(z).mean(), params)
        estimates.append(torch.cat([g.flatten() for g in grads]))
    est = torch.stack(estimates)
    mean, stderr = est.mean(0), est.std(0) / est.shape[0] ** 0.5
    assert torch.all((mean - exact).abs() < 4.5 * stderr + 1e-3), (mean, exact, stderr)
    assert exact.abs().max() > 0.05  # the check has something to detect


def test_conditional_cdf_jacobian_matches_autograd() -> None:
    base = _mixture(3, 4, seed=0)
    z = base._sample_exact(6).requires_grad_()
    cdf, jac = base.conditional_cdf(z)
    rows = [torch.autograd.grad(cdf[:, d].sum(), z, retain_graph=True)[0] for d in range(3)]
    torch.testing.assert_close(jac, torch.stack(rows, 1))
    assert torch.all((cdf > 0) & (cdf < 1))


def test_samples_follow_eq1_in_1d() -> None:
    """KS test against eq. 1's CDF over 8 sample seeds: p > 0.01 in at least 7 (a fair sampler fails one
    seed with probability 0.01, two of 8 with 0.003)."""
    base = _mixture(1, 3, seed=5)
    w = torch.softmax(base.logits, -1).detach().numpy()
    mu, sd = base.mu.detach()[:, 0].numpy(), base.log_sigma.detach().exp()[:, 0].numpy()

    def cdf(x: np.ndarray) -> np.ndarray:
        return sum(wk * stats.norm.cdf(x, m, s) for wk, m, s in zip(w, mu, sd, strict=True))

    pvalues = []
    for seed in range(8):
        torch.manual_seed(seed)
        pvalues.append(stats.kstest(base.sample((20000,))[:, 0].numpy(), cdf).pvalue)
    assert sum(p > 0.01 for p in pvalues) >= 7, pvalues


def test_samples_follow_eq1_in_2d_box_probabilities() -> None:
    """Box frequencies against eq. 1 over 8 sample seeds x 4 boxes: within 3 binomial standard errors in at
    least 30 of 32 (a fair sampler misses each with probability 0.0027: 3 misses of 32 has probability 1e-4)."""
    base = _mixture(2, 3, seed=7)
    n = 40000
    w = torch.softmax(base.logits, -1).detach().numpy()
    mu, sd = base.mu.detach().numpy(), base.log_sigma.detach().exp().numpy()
    misses = []
    for seed in range(8):
        torch.manual_seed(seed)
        z = base.sample((n,)).numpy()
        for lo, hi in [((-1, -1), (1, 1)), ((0, -3), (3, 0)), ((-4, 0), (0, 4)), ((-10, -10), (0, 0))]:
            lo_a, hi_a = np.array(lo), np.array(hi)
            truth = sum(
                wk * np.prod(stats.norm.cdf(hi_a, m, s) - stats.norm.cdf(lo_a, m, s))
                for wk, m, s in zip(w, mu, sd, strict=True)
            )
            freq = np.mean(np.all((z > lo_a) & (z < hi_a), axis=1))
            if abs(freq - truth) >= 3 * np.sqrt(truth * (1 - truth) / n) + 1e-4:
                misses.append((seed, lo, hi, freq, truth))
    assert len(misses) <= 2, misses


def test_density_is_eq1_and_interface() -> None:
    base = _mixture(2, 3, seed=3)
    pts = torch.randn(10, 2, dtype=torch.float64)
    torch.testing.assert_close(base.log_prob(pts), _grid_density(base, pts).log())
    with torch.no_grad():
        z, log_p = base.rsample_and_log_prob(100, estimator="nested")
    torch.testing.assert_close(log_p, base.exact_log_prob(z))
    assert base.rsample((3, 4)).shape == (3, 4, 2)
    with pytest.raises(ValueError, match="unknown estimator"):
        base.rsample_and_log_prob(4, estimator="bogus")


def test_entropy_gradient_reaches_weights_in_a_flow() -> None:
    flow = make_flow(2, base="exact-mog", components=4, transform="coupling", layers=2)
    x, log_q = flow.rsample_and_log_prob(256)
    (x.pow(2).sum(-1) + log_q).mean().backward()
    for name in ("logits", "mu", "log_sigma"):
        grad = getattr(flow.base, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
