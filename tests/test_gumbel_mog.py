"""GumbelMoG: sampling, gradients and every density estimator against independent truth."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import expit
from truth import mixture_density_1d, soft_mixture_density_1d, soft_mixture_density_1d_many

from maxent_mdn import ESTIMATORS, GumbelMoG
from maxent_mdn.model.base.concrete import concrete_log_prob
from maxent_mdn.model.base.estimators import diag_normal_log_prob

WEIGHTS = np.array([0.3, 0.7])
MU = np.array([-2.0, 1.5])
SIGMA = np.array([0.5, 1.0])


def _base_1d(tau: float = 0.5) -> GumbelMoG:
    base = GumbelMoG(1, 2, tau=tau).double()
    with torch.no_grad():
        base.logits.copy_(torch.tensor(np.log(WEIGHTS)))
        base.mu.copy_(torch.tensor(MU).unsqueeze(-1))
        base.log_sigma.copy_(torch.tensor(np.log(SIGMA)).unsqueeze(-1))
    return base


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_shapes_and_finiteness(estimator: str) -> None:
    base = GumbelMoG(3, 4, tau=0.3)
    z, log_p = base.rsample_and_log_prob(64, estimator=estimator)
    assert z.shape == (64, 3) and log_p.shape == (64,)
    assert torch.isfinite(z).all() and torch.isfinite(log_p).all()
    assert base.rsample((2, 5)).shape == (2, 5, 3)
    assert base.event_shape == (3,) and base.batch_shape == ()
    assert not base.sample((4,)).requires_grad


@pytest.mark.parametrize("tau", [0.5, 0.05])
@pytest.mark.parametrize("hard", [False, True])
def test_gradients_reach_every_parameter(tau: float, hard: bool) -> None:
    base = GumbelMoG(2, 3, tau=tau, hard=hard)
    z = base.rsample((512,))
    loss = (z.pow(2) + torch.sin(3 * z)).sum()
    loss.backward()
    for name in ("logits", "mu", "log_sigma"):
        grad = getattr(base, name).grad
        assert grad is not None and torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def test_hard_selection_is_one_hot_forward() -> None:
    base = GumbelMoG(2, 3, hard=True)
    sel = base.select(100)
    assert torch.all((sel.c == 0) | (sel.c == 1))
    torch.testing.assert_close(sel.loc, sel.c @ base.mu)


def test_independent_estimate_matches_quadrature_marginal() -> None:
    base = _base_1d(tau=0.5)
    points = np.array([-3.0, -2.0, -0.5, 0.0, 1.0, 2.5, 4.0])
    truth = np.array([soft_mixture_density_1d(z, WEIGHTS, MU, SIGMA, 0.5) for z in points])
    np.testing.assert_allclose(
        soft_mixture_density_1d_many(points, WEIGHTS, MU, SIGMA, 0.5), truth, rtol=1e-8
    )
    with torch.no_grad():
        est = base.log_prob(torch.tensor(points).unsqueeze(-1), num_nested=200_000).exp().numpy()
    np.testing.assert_allclose(est, truth, rtol=0.02)
    # and the soft marginal is really not eq. 1 at this temperature
    assert np.max(np.abs(mixture_density_1d(points, WEIGHTS, MU, SIGMA) / truth - 1)) > 0.05


def test_exact_is_eq1_in_closed_form() -> None:
    base = _base_1d()
    points = np.linspace(-5, 5, 11)
    with torch.no_grad():
        got = base.exact_log_prob(torch.tensor(points).unsqueeze(-1)).numpy()
    np.testing.assert_allclose(got, np.log(mixture_density_1d(points, WEIGHTS, MU, SIGMA)), rtol=1e-12)


def test_marginal_estimate_integrates_to_one() -> None:
    base = _base_1d(tau=0.3)
    grid = torch.linspace(-12, 12, 6001, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        dens = base.log_prob(grid, num_nested=4096).exp()
    assert abs(torch.trapezoid(dens, grid[:, 0]).item() - 1) < 1e-6


def test_concrete_joint_integrates_to_one_and_matches_logistic_law() -> None:
    tau = 0.5
    base = _base_1d(tau)
    u = torch.linspace(-80, 80, 8001, dtype=torch.float64)  # u = logit(c_1)
    log_c = torch.stack([torch.nn.functional.logsigmoid(u), torch.nn.functional.logsigmoid(-u)], -1)
    log_conc = concrete_log_prob(log_c, base.logits.detach(), tau)
    c1 = torch.sigmoid(u)
    # density of u: Concrete(c) * dc1/du must equal tau * logistic_pdf(tau*u - delta),
    # with log(dc1/du) = log c1 + log(1 - c1); compared in log space
    delta = math.log(WEIGHTS[0] / WEIGHTS[1])
    t = tau * u.numpy() - delta
    log_logistic = math.log(tau) + np.log(expit(t)) + np.log(expit(-t))
    np.testing.assert_allclose((log_conc + log_c.sum(-1)).numpy(), log_logistic, rtol=1e-9)
    # joint (c, z0) density integrates to one
    z = torch.linspace(-10, 10, 801, dtype=torch.float64)
    mu, sigma = base.mu.detach()[:, 0], base.log_sigma.detach().exp()[:, 0]
    loc = c1 * mu[0] + (1 - c1) * mu[1]
    scale = c1 * sigma[0] + (1 - c1) * sigma[1]
    log_n = diag_normal_log_prob(z[None, :, None], loc[:, None, None], scale[:, None, None])
    joint = (log_conc[:, None] + log_n).exp() * (c1 * (1 - c1))[:, None]
    total = torch.trapezoid(torch.trapezoid(joint, z, dim=1), u)
    assert abs(total.item() - 1) < 1e-4


def test_concrete_log_prob_agrees_with_torch_and_stays_finite_at_small_tau() -> None:
    logits = torch.randn(4, dtype=torch.float64)
    base = GumbelMoG(1, 4, tau=0.7).double()
    with torch.no_grad():
        base.logits.copy_(logits)
        sel = base.select(200)
    ours = concrete_log_prob(sel.log_c, logits, 0.7)
    theirs = torch.distributions.RelaxedOneHotCategorical(torch.tensor(0.7), logits=logits).log_prob(sel.c)
    # torch evaluates on c (not log c) and loses a few digits where some c_k is tiny
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    base32 = GumbelMoG(1, 4, tau=0.01)
    _, log_p = base32.rsample_and_log_prob(2000, estimator="concrete-joint")
    assert torch.isfinite(log_p).all()


def test_nested_bias_is_nonnegative_and_shrinks_with_batch() -> None:
    """SIVI: E[log p_hat_n] >= E[log p], non-increasing in n (own term included)."""
    tau = 0.3
    base = _base_1d(tau)
    grid = np.linspace(-8, 8, 801)
    dens = soft_mixture_density_1d_many(grid, WEIGHTS, MU, SIGMA, tau)
    true_entropy = -np.trapezoid(dens * np.log(dens), grid)
    total, biases = 1 << 15, []
    with torch.no_grad():
        for n in (4, 16, 64, 256, 1024):
            logs = [base.rsample_and_log_prob(n, "nested")[1] for _ in range(total // n)]
            biases.append(true_entropy + torch.cat(logs).mean().item())  # H - H_hat_n >= 0
    stderr = 3 * 1.2 / math.sqrt(total)  # std of log p is about 1.2 here
    assert all(b > -stderr for b in biases), biases
    assert all(a > b for a, b in itertools.pairwise(biases)), biases
    assert biases[-1] < 0.02, biases


def test_loo_and_independent_are_biased_upward_in_entropy() -> None:
    base = _base_1d(0.3)
    with torch.no_grad():
        h_loo = -torch.cat([base.rsample_and_log_prob(64, "loo")[1] for _ in range(256)]).mean()
        h_nested = -torch.cat([base.rsample_and_log_prob(64, "nested")[1] for _ in range(256)]).mean()
    assert h_loo > h_nested


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 0, "components": 2}, "dim must be a positive integer"),
        ({"dim": 1, "components": 0}, "components must be a positive integer"),
        ({"dim": 1, "components": 2, "tau": 0.0}, "tau must be a positive"),
        ({"dim": 1, "components": 2, "tau": float("nan")}, "tau must be a positive"),
    ],
)
def test_invalid_hyperparameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GumbelMoG(**kwargs)


def test_bad_estimator_and_shapes() -> None:
    base = GumbelMoG(2, 3)
    with pytest.raises(ValueError, match="unknown estimator 'foo'; choose one of nested, loo"):
        base.rsample_and_log_prob(8, estimator="foo")
    with pytest.raises(ValueError, match=r"expected points of shape \(\.\.\., 2\)"):
        base.log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="tau must be a positive"):
        base.tau = -1.0
    base.tau = 0.1
    assert base.tau == pytest.approx(0.1)
    assert base.state_dict()["_tau"].item() == pytest.approx(0.1)
