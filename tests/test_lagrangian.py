"""The augmented Lagrangian: unbiased penalty gradient, multiplier and penalty updates, convergence test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maxent_mdn.objective.lagrangian import AugmentedLagrangian
from maxent_mdn.objective.tolerance import met, row_tolerance


def _gradient(alm: AugmentedLagrangian, theta: torch.Tensor, n: int) -> torch.Tensor:
    theta = theta.clone().requires_grad_()
    x = theta + torch.randn(n, 1, dtype=torch.float64)  # E[T] = theta for T(x) = x
    loss, _ = alm.loss(x, log_q=torch.zeros(n, dtype=torch.float64))
    return torch.autograd.grad(loss, theta)[0]


def test_penalty_gradient_is_unbiased_for_small_batches() -> None:
    """With T(x) = x, x ~ N(theta, 1): d/dtheta [lam g + c/2 g^2] = lam + c (theta - b) exactly."""
    torch.manual_seed(0)
    alm = AugmentedLagrangian(torch.tensor([1.0]), ["=="], c0=10.0)
    alm.lam = torch.tensor([0.5], dtype=torch.float64)
    theta = torch.tensor([1.3], dtype=torch.float64)
    grads = torch.stack([_gradient(alm, theta, n=4) for _ in range(5000)])
    exact = 0.5 + 10.0 * 0.3
    stderr = grads.std() / len(grads) ** 0.5
    assert abs(grads.mean().item() - exact) < 4 * stderr.item()


def test_inequality_rows_only_push_when_violated() -> None:
    alm = AugmentedLagrangian(torch.tensor([1.0, 1.0]), ["<=", ">="], c0=1.0)
    x = torch.full((10, 2), 0.5, dtype=torch.float64, requires_grad=True)
    loss, g = alm.loss(x, torch.zeros(10, dtype=torch.float64))
    assert g.tolist() == [-0.5, 0.5]  # row 0 satisfied (0.5 <= 1), row 1 violated (0.5 < 1)
    (grad,) = torch.autograd.grad(loss, x)
    # the push comes through the first half-batch (the second half sets its size, held constant)
    assert torch.all(grad[:, 0] == 0) and torch.all(grad[:5, 1] < 0) and torch.all(grad[5:, 1] == 0)
    alm.update_multipliers(g)
    assert alm.lam.tolist() == [0.0, 0.5]


def test_penalty_grows_only_when_norms_do_not_shrink() -> None:
    rng = np.random.default_rng(0)
    alm = AugmentedLagrangian(torch.tensor([0.0]), ["=="], c0=1.0, beta=4.0, gamma=0.25)
    before = np.abs(rng.normal(1.0, 0.1, 1000))
    assert not alm.update_penalty(before, 0.1 * before, rng) and alm.c == 1.0
    assert alm.update_penalty(before, 0.9 * before, rng) and alm.c == 4.0
    alm.c = alm.c_max
    assert not alm.update_penalty(before, before, rng) and alm.c == alm.c_max


def test_convergence_test_detects_a_one_percent_bias() -> None:
    rng = np.random.default_rng(1)
    alm = AugmentedLagrangian(torch.tensor([1.0, 1.0]), ["==", "<="])
    noise = torch.from_numpy(rng.normal(0.0, 0.03, (100, 2)))  # batch-mean noise of 1000-sample batches
    assert alm.converged(noise)[0]
    assert not alm.converged(noise + torch.tensor([0.01, 0.0]))[0]
    assert not alm.converged(noise + torch.tensor([0.0, 0.01]))[0]
    assert alm.converged(noise + torch.tensor([0.0, -0.5]))[0]  # a slack inequality is fine


def test_multiplier_step_is_capped_but_penalty_is_not() -> None:
    alm = AugmentedLagrangian(torch.tensor([0.0]), ["=="], c0=50.0, dual_step=1.0)
    alm.update_multipliers(torch.tensor([0.2], dtype=torch.float64))
    assert alm.lam.item() == pytest.approx(0.2)  # min(c, 1) * W g with W = I
    x = torch.full((4, 1), 0.2, dtype=torch.float64, requires_grad=True)
    loss, _ = alm.loss(x, torch.zeros(4, dtype=torch.float64))
    (grad,) = torch.autograd.grad(loss, x)
    # d/dx of lam * mean(x) + c * mean(x[:2]) * mean(x[2:]).detach()
    torch.testing.assert_close(
        grad[:, 0], torch.tensor([0.05 + 50 * 0.2 / 2, 0.05 + 50 * 0.2 / 2, 0.05, 0.05], dtype=torch.float64)
    )


def test_whitening_metric_inverts_the_covariance() -> None:
    alm = AugmentedLagrangian(torch.zeros(3), ["==", "==", "<="])
    cov = torch.tensor([[2.0, 0.5, 0.1], [0.5, 1.0, 0.0], [0.1, 0.0, 4.0]], dtype=torch.float64)
    alm.set_covariance(cov)
    torch.testing.assert_close(alm.metric[:2, :2], torch.linalg.inv(cov[:2, :2]))
    assert alm.metric[2].abs().sum() == 0 and alm.scale[2] == 2.0


def test_the_metric_does_not_depend_on_the_units_of_the_rows() -> None:
    """Powers x, ..., x^5 of a uniform on [0, 5] (exact moments): variances from 2 to 1e6, the covariance's
    eigenvalues spanning 1e-9 of the largest, the correlations' 1e-7. Rescaling row j by a_j must rescale W by 1 / (a_i a_j) exactly,
    and W must invert the covariance: the eigenvalue floor (1e-8) may not bind on units alone."""
    k = torch.arange(1, 6, dtype=torch.float64)
    moment = lambda p: 5.0**p / (p + 1)  # E[x^p] for x ~ U(0, 5)
    cov = moment(k.unsqueeze(-1) + k) - moment(k).unsqueeze(-1) * moment(k)
    alm = AugmentedLagrangian(torch.zeros(5), ["=="] * 5)
    alm.set_covariance(cov)
    torch.testing.assert_close(alm.metric @ cov, torch.eye(5, dtype=torch.float64), atol=1e-4, rtol=0)
    a = 10.0 ** torch.arange(-2.0, 3.0, dtype=torch.float64)
    alm.set_covariance(cov * a * a.unsqueeze(-1))
    torch.testing.assert_close(
        alm.metric * a * a.unsqueeze(-1) @ cov, torch.eye(5, dtype=torch.float64), atol=1e-4, rtol=0
    )


def test_precise_small_violations_inside_the_tolerance_count_as_met() -> None:
    rng = np.random.default_rng(2)
    alm = AugmentedLagrangian(torch.tensor([2.0]), ["=="])
    tiny_noise = torch.from_numpy(rng.normal(0.0, 0.001, (100, 1)))
    assert not alm.converged(tiny_noise + 0.05)[0]  # 2.5% of the target: outside
    assert alm.converged(tiny_noise + 0.005)[0]  # significant, but well inside 1% (0.02)


def test_a_small_target_is_held_to_its_own_scale_not_to_an_absolute_floor() -> None:
    """E x^4 = 0.011 with spread 0.008: 0.3% off passes, 3% off fails, though both are far inside 0.005."""
    rng = np.random.default_rng(3)
    alm = AugmentedLagrangian(torch.tensor([0.011]), ["=="])
    spread = torch.tensor([0.008], dtype=torch.float64)  # sd of x^4 under q; batch means of 2000 draws:
    noise = torch.from_numpy(rng.normal(0.0, 0.008 / np.sqrt(2000), (100, 1)))
    assert alm.converged(noise + 0.000033, rtol=0.01, spread=spread)[0]
    assert not alm.converged(noise + 0.00033, rtol=0.01, spread=spread)[0]
    # the old absolute floor would have passed the second: 0.00033 is inside 0.005
    assert alm.converged(noise + 0.00033, rtol=0.01, atol=0.005, spread=spread)[0]


def test_a_target_inside_its_spread_is_judged_on_the_spread() -> None:
    """A mean of 0 has no relative error; 1% of its spread (2.0) is the tolerance."""
    rng = np.random.default_rng(4)
    alm = AugmentedLagrangian(torch.tensor([0.0]), ["=="])
    tiny_noise = torch.from_numpy(rng.normal(0.0, 1e-5, (100, 1)))
    spread = torch.tensor([2.0], dtype=torch.float64)
    assert alm.converged(tiny_noise + 0.015, rtol=0.01, spread=spread)[0]  # tolerance 0.01 * 2 = 0.02
    assert not alm.converged(tiny_noise + 0.025, rtol=0.01, spread=spread)[0]
    assert not alm.converged(tiny_noise + 0.015, rtol=0.01)[0]  # no spread given: the target (0) alone


def test_within_one_percent_allows_only_what_the_samples_cannot_resolve() -> None:
    """The report's check: 1% of max(|b|, s), or 3 standard errors where that is larger."""
    tolerance = row_tolerance(np.array([-0.4, 10.0]), np.array([1.28, 3.0]), rtol=0.01)
    np.testing.assert_allclose(tolerance, [0.0128, 0.1])
    assert met(np.array([0.012, 0.05]), np.array([0.001, 0.001]), tolerance).all()
    assert not met(np.array([0.02, 0.2]), np.array([0.001, 0.001]), tolerance).any()
    assert met(np.array([0.02]), np.array([0.0075]), np.array([0.0128]))[0]  # 2.7 se: unresolved
