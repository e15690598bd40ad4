"""RAD: piece maps against autograd, exact density against a grid, samples against the density, gradients."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given
from torch.autograd.functional import jacobian

from maxent_mdn.model.base import StandardNormal
from maxent_mdn.model.rad import Fold, RADFlow, make_rad
from maxent_mdn.objective.score import score_function_term


def _perturbed(module: torch.nn.Module, seed: int, scale: float) -> torch.nn.Module:
    torch.manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


@given(dim=st.integers(1, 4), pieces=st.sampled_from([3, 5]), seed=st.integers(0, 2**16))
def test_fold_piece_map_inverse_and_log_det_against_autograd(dim: int, pieces: int, seed: int) -> None:
    fold = _perturbed(Fold(dim, pieces=pieces, hidden=8), seed, 0.5)
    x = 2.0 * torch.randn(6, dim, dtype=torch.float64)
    z, ladj, _ = fold.encode(x)
    # within its piece the map is a bijection: decode with the piece of x gives x back
    knots = fold._pieces(x[:, : fold.split])[0]
    piece = (x[:, fold.split :].unsqueeze(-1) >= knots).sum(-1)
    x_back, ladj_back, _ = fold.decode(z, piece=piece)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(ladj_back, -ladj)
    for i in range(x.shape[0]):
        jac = jacobian(lambda row: fold.encode(row.unsqueeze(0))[0].squeeze(0), x[i])
        torch.testing.assert_close(ladj[i], torch.linalg.slogdet(jac)[1])


def test_fold_gate_is_zero_exactly_on_inadmissible_pieces() -> None:
    fold = Fold(1)
    z = torch.tensor([[-5.0], [-0.1], [5.0]])  # below the fold [-0.2, 0] at initialisation, inside, above
    _, admissible = fold._preimages(z[:, 0:1], *fold._pieces(z[:, :0]))
    assert admissible.tolist() == [[[True, False, False]], [[True, True, True]], [[False, False, True]]]
    log_p = fold._log_gate(z, admissible)
    assert torch.isinf(log_p[~admissible]).all() and torch.isfinite(log_p[admissible]).all()


def _grid_mass(flow: RADFlow, half_width: float, points: int) -> float:
    g = torch.linspace(-half_width, half_width, points, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    with torch.no_grad():
        log_p = flow.log_prob(torch.stack([xx.ravel(), yy.ravel()], -1))
    return float(log_p.exp().sum() * (g[1] - g[0]) ** 2)


@pytest.mark.parametrize("transform", ["coupling", "spline"])
@pytest.mark.parametrize("seed", [0, 1])
def test_rad_density_integrates_to_one_at_random_initialisation(seed: int, transform: str) -> None:
    flow = _perturbed(make_rad(2, layers=2, hidden=16, transform=transform, bins=4), seed, 0.1)
    with torch.no_grad():
        outside = float((flow.sample((20000,)).abs() > 10).any(-1).double().mean())
    assert outside < 1e-3
    assert abs(_grid_mass(flow, 10.0, 801) - 1.0) < 0.01


@pytest.mark.parametrize("transform", ["coupling", "spline"])
def test_rad_log_prob_matches_the_density_of_its_own_samples(transform: str) -> None:
    flow = _perturbed(make_rad(2, layers=3, hidden=16, transform=transform, bins=4), 3, 0.1)
    x, log_q = flow.rsample_and_log_prob(2000)
    torch.testing.assert_close(flow.log_prob(x.detach()), log_q.detach(), rtol=0, atol=1e-9)


def test_rad_samples_follow_its_density() -> None:
    """Histogram of 400k samples against the density integrated over the same bins (1D, many folds)."""
    flow = _perturbed(make_rad(1, layers=3, hidden=16), 5, 0.3)
    with torch.no_grad():
        x = flow.sample((400_000,)).squeeze(-1).numpy()
        edges = np.linspace(-8, 8, 81)
        fine = torch.linspace(-8, 8, 80 * 200 + 1, dtype=torch.float64)
        dens = flow.log_prob(fine.unsqueeze(-1)).exp().numpy()
    cell = np.diff(fine.numpy())[0]
    mass = np.add.reduceat(dens[:-1] * cell, np.arange(0, 80 * 200, 200))
    counts, _ = np.histogram(x, edges)
    expected = mass * x.size
    keep = expected > 20
    chi2 = float((((counts - expected) ** 2 / expected)[keep]).sum())
    # chi-square with ~keep.sum() degrees of freedom: mean k, sd sqrt(2k); 5 sd is far beyond chance
    k = int(keep.sum())
    assert chi2 < k + 5 * np.sqrt(2 * k), (chi2, k)
    assert abs(mass.sum() - 1.0) < 0.01


def test_rad_density_integrates_to_one_after_training() -> None:
    torch.manual_seed(0)
    flow = make_rad(2, layers=2, hidden=16).double()
    data = torch.cat([torch.randn(500, 2) * 0.3 + 1.5, torch.randn(500, 2) * 0.3 - 1.5]).double()
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    for _ in range(60):
        loss = -flow.log_prob(data).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 2.4  # it learned something (a standard normal scores about 3.2)
    assert abs(_grid_mass(flow, 8.0, 801) - 1.0) < 0.01


def test_score_function_gradient_of_the_gate_is_unbiased() -> None:
    """d/dθ E_q[f(x)] for the gating parameters: Monte Carlo (pathwise + score term) vs the grid integral."""
    torch.manual_seed(0)
    fold = Fold(1, hidden=4).double()
    flow = RADFlow(StandardNormal(1), [fold]).double()
    with torch.no_grad():  # a deep fold, and a gate that depends on z
        fold.conditioner.constant.copy_(torch.tensor([0.0, 2.0, 0.3, -0.2, 0.1, 0.5]))
        for p in fold.gate.parameters():
            p.add_(0.5 * torch.randn_like(p))
    gate_params = list(fold.gate.parameters())

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(2.0 * x) + 0.3 * x**2

    grid = torch.linspace(-12, 12, 200_001, dtype=torch.float64).unsqueeze(-1)
    exact = torch.autograd.grad(
        (flow.log_prob(grid).exp() * f(grid[:, 0])).sum() * (grid[1, 0] - grid[0, 0]), gate_params
    )
    estimates = []
    for _ in range(20):
        x, log_q, log_gate = flow.rsample_with_score(20000)
        stats = f(x[:, 0]).unsqueeze(-1)
        loss = stats.mean()
        total = loss + score_function_term(loss, stats, log_q, log_gate)
        estimates.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(total, gate_params)]))
    est = torch.stack(estimates)
    mean, se = est.mean(0), est.std(0) / np.sqrt(est.shape[0])
    truth = torch.cat([g.reshape(-1) for g in exact])
    assert truth.abs().max() > 0.01  # the test has something to detect
    z = ((mean - truth).abs() / (se + 1e-4)).max()
    assert z < 4.5, (mean, truth, se)


def test_rad_spline_puts_the_spline_flows_couplings_between_its_folds() -> None:
    from maxent_mdn.model import make_flow
    from maxent_mdn.model.transforms import AffineCoupling, SplineCoupling

    paper, fair = make_flow(2, base="rad"), make_flow(2, base="rad-spline", bins=4)
    assert {type(m) for m in paper.layers} >= {Fold, AffineCoupling}
    assert not any(isinstance(m, SplineCoupling) for m in paper.layers)
    splines = [m for m in fair.layers if isinstance(m, SplineCoupling)]
    assert len(splines) == 4 and sum(isinstance(m, Fold) for m in fair.layers) == 4
    assert not any(isinstance(m, AffineCoupling) for m in fair.layers)
    assert all(m.bins == 4 for m in splines)
    with pytest.raises(ValueError, match="unknown transform 'planar'"):
        make_rad(2, transform="planar")
