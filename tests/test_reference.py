"""Reference solvers: closed forms, the cvxpy grid dual against its primal, closed forms against the grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from maxent_mdn import Expectation, Interval, MaxEntProblem, Mean, Positive, Real, load_spec
from maxent_mdn.reference import (
    DirichletReference,
    ExponentialReference,
    GaussianReference,
    TruncatedExponentialReference,
    closed_form_reference,
    dirichlet_from_log_means,
    grid_primal_entropy,
    grid_reference,
    reference_for,
)

ROOT = Path(__file__).resolve().parents[1] / "constraints"


def test_quartic_dual_matches_literature_and_primal() -> None:
    problem = load_spec(ROOT / "quartic_bimodal_1d.py")
    ref = grid_reference(problem)
    np.testing.assert_allclose(ref.eta, [2.03196, -0.84399], atol=2e-5)
    assert abs(ref.entropy - 1.14171) < 1e-4
    primal = grid_primal_entropy(problem, ref.box, 4001)
    assert abs(primal - ref.entropy) < 1e-4
    # the density integrates to one and meets the constraints (quadrature, independent of the grid)
    dens = lambda x: math.exp(float(ref.log_prob(torch.tensor([[x]]))))
    assert abs(integrate.quad(dens, -10, 10)[0] - 1) < 1e-6
    assert abs(integrate.quad(lambda x: x**4 * dens(x), -10, 10)[0] - 1.5) < 1e-5


def test_inequality_grid_dual_matches_primal_and_is_active() -> None:
    problem = load_spec(ROOT / "positive_inequality.py")
    ref = grid_reference(problem)
    assert ref.eta[1] < 0 and abs(ref.moments[1] - 1.5) < 1e-6
    assert abs(grid_primal_entropy(problem, ref.box, 4001) - ref.entropy) < 1e-4
    slack = MaxEntProblem(
        1, [Mean(1.0), Expectation(lambda x: x[..., 0] ** 2, 3.0, relation="<=")], Positive()
    )
    inactive = grid_reference(slack)
    assert abs(inactive.eta[1]) < 1e-6 and abs(inactive.entropy - 1.0) < 1e-3  # exponential(1): H = 1


def test_the_grid_dual_is_solved_along_its_flattest_direction_too() -> None:
    # trimodal x^6 moments are nearly collinear: the dual's Hessian has an eigenvalue near 1e-6, and
    # L-BFGS-B's relative-decrease stop left eta 8e-3 off along it on CPUs without AVX2 (issue 18's kind).
    # From a start 1e-2 off along that eigenvector, the Newton polish returns the same eta.
    from maxent_mdn.experiments import problem_for
    from maxent_mdn.reference.grid import _Grid, _newton_polish

    problem = problem_for("trimodal-1d")
    ref = grid_reference(problem)
    stats = _Grid(problem, ref.box, 4001).stats
    centre, scale = stats.mean(0), stats.std(0)
    a, b = (stats - centre) / scale, (problem.targets.numpy() - centre) / scale
    x = ref.eta * scale
    z = a @ x
    p = np.exp(z - special.logsumexp(z))
    hess = (a * p[:, None]).T @ a - np.outer(p @ a, p @ a)
    values, vectors = np.linalg.eigh(hess)
    assert values[0] < 1e-4 * values[-1]  # the case is as ill-conditioned as claimed
    polished = _newton_polish(a, b, x + 1e-2 * vectors[:, 0], [(None, None)] * len(x))
    np.testing.assert_allclose(polished / scale, ref.eta, atol=1e-6)
    np.testing.assert_allclose(ref.eta, [-2.734, 2.295, -0.5], atol=1e-5)  # the generating density


def test_cvxpy_on_a_subsample_of_the_grid_starts_the_polish_at_the_whole_grid_answer(monkeypatch) -> None:
    """cvxpy sees every k-th point of a 2-D grid; L-BFGS-B and Newton then reach the answer cvxpy finds on
    every point (quartic_2d's 101 x 101 grid: stride 3; to 1e-8 in eta, 1e-10 in H)."""
    import maxent_mdn.reference.grid as grid_module

    problem = load_spec(ROOT / "quartic_2d.py")
    sizes: list[int] = []
    solve = grid_module._cvxpy_dual

    def counted(a: np.ndarray, *args: object) -> np.ndarray:
        sizes.append(a.shape[0])
        return solve(a, *args)

    monkeypatch.setattr(grid_module, "_cvxpy_dual", counted)
    sub = grid_reference(problem, points=101)
    monkeypatch.setattr(grid_module, "CVXPY_POINTS", 10**9)
    whole = grid_reference(problem, points=101)
    assert sizes == [-(-(101**2) // 3), 101**2]  # the subsample alone, then the whole grid alone
    np.testing.assert_allclose(sub.eta, whole.eta, rtol=0, atol=1e-8)
    assert abs(sub.entropy - whole.entropy) < 1e-10


def test_where_the_subsample_has_no_answer_cvxpy_solves_the_whole_grid(monkeypatch) -> None:
    """A subsample cvxpy finds no answer on (forced here) is not the grid's verdict: the whole grid is solved,
    and a problem the whole grid cannot meet still fails with its message."""
    import maxent_mdn.reference.grid as grid_module

    problem = load_spec(ROOT / "gaussian_2d.py")
    solve, sizes = grid_module._cvxpy_dual, []

    def subsample_fails(a: np.ndarray, *args: object) -> np.ndarray:
        sizes.append(a.shape[0])
        if a.shape[0] <= grid_module.CVXPY_POINTS:
            raise ValueError("the grid reference solver found no solution (status infeasible)")
        return solve(a, *args)

    monkeypatch.setattr(grid_module, "_cvxpy_dual", subsample_fails)
    ref = grid_reference(problem, points=81)
    assert sizes[:2] == [-(-(81**2) // 2), 81**2]
    assert abs(ref.entropy - closed_form_reference(problem).entropy) < 2e-3
    beyond = MaxEntProblem(2, [Mean([2.0, 0.0])], Interval(0.0, 1.0), name="beyond")  # E x_0 = 2 on [0, 1]
    monkeypatch.setattr(grid_module, "_cvxpy_dual", solve)
    with pytest.raises(ValueError, match="infeasible on the support|no solution|failed"):
        grid_reference(beyond, points=81)


@pytest.mark.parametrize(
    ("spec", "tol"), [("gaussian_2d", 2e-3), ("exponential", 1e-4), ("interval", 1e-5), ("dirichlet", 2e-3)]
)
def test_closed_forms_agree_with_the_grid_solver(spec: str, tol: float) -> None:
    problem = load_spec(ROOT / f"{spec}.py")
    closed = closed_form_reference(problem)
    assert closed is not None and closed.kind != "grid"
    grid = grid_reference(problem)
    assert abs(closed.entropy - grid.entropy) < tol, (closed.entropy, grid.entropy)


def test_closed_form_values() -> None:
    gauss = GaussianReference([0.5, -1.0], [[1.0, 0.6], [0.6, 2.0]])
    assert (
        abs(
            gauss.entropy
            - 0.5 * math.log(np.linalg.det(2 * math.pi * math.e * np.array([[1, 0.6], [0.6, 2]])))
        )
        < 1e-12
    )
    assert abs(DirichletReference([1.0, 2.0, 3.0]).entropy - (-1.2443)) < 1e-4
    b = special.digamma([1.3, 1.7, 3.3]) - special.digamma(6.3)
    np.testing.assert_allclose(dirichlet_from_log_means(b), [1.3, 1.7, 3.3], rtol=1e-9)
    assert abs(reference_for(load_spec(ROOT / "exponential.py")).entropy - (1 + math.log(2))) < 1e-12
    mid = closed_form_reference(MaxEntProblem(1, [Mean(1.0)], support=Interval(0.0, 2.0)))
    assert abs(mid.entropy - math.log(2.0)) < 1e-12


def test_unrecognized_constraints_fall_back_to_the_grid() -> None:
    problem = MaxEntProblem(1, [Expectation(lambda x: x[..., 0] ** 2, 2.0)], support=Real())
    assert closed_form_reference(problem) is None
    ref = reference_for(problem)
    assert ref.kind == "grid" and abs(ref.entropy - 0.5 * math.log(2 * math.pi * math.e * 2.0)) < 1e-5


def test_infeasible_log_means_are_refused() -> None:
    with pytest.raises(ValueError, match="Jensen"):
        dirichlet_from_log_means([-0.1, -0.2, -0.3])


@pytest.mark.parametrize(
    "reference",
    [
        GaussianReference([1.0, -1.0], [[2.0, 0.6], [0.6, 1.0]]),
        ExponentialReference([2.0, 0.5]),
        DirichletReference([1.0, 2.0, 3.0]),
        TruncatedExponentialReference([0.3, 0.5, 0.8], 0.0, 1.0),
    ],
    ids=lambda r: r.kind,
)
def test_exact_draws_follow_the_closed_form(reference: object) -> None:
    """Each coordinate's draws pass a KS test against the marginal CDF, by quadrature of the density."""
    draws = reference.sample(4000, seed=1)
    assert draws.dtype == torch.float64 and torch.isfinite(reference.log_prob(draws)).all()
    assert torch.equal(draws, reference.sample(4000, seed=1))
    if isinstance(reference, GaussianReference):  # joint check: whitened draws are standard normal
        chol = torch.linalg.cholesky(reference.cov)
        white = torch.linalg.solve_triangular(chol, (draws - reference.mean).T, upper=False).T
        for column in white.T:
            assert stats.kstest(column.numpy(), "norm").pvalue > 1e-3
        return
    for i in range(draws.shape[1]):
        marginal = {
            ExponentialReference: lambda i: stats.expon(scale=float(reference.means[i])),
            DirichletReference: lambda i: stats.beta(
                float(reference.alpha[i]), float(reference.alpha.sum() - reference.alpha[i])
            ),
            TruncatedExponentialReference: lambda i: _truncated_exponential(reference.eta[i]),
        }[type(reference)](i)
        assert stats.kstest(draws[:, i].numpy(), marginal.cdf).pvalue > 1e-3


def _truncated_exponential(eta: float) -> object:
    """p(t) ∝ e^(η t) on (0, 1) as a scipy distribution (η ≠ 0), from its CDF."""

    class _Dist(stats.rv_continuous):
        def _cdf(self, t: np.ndarray) -> np.ndarray:
            return np.expm1(eta * t) / np.expm1(eta)

    return _Dist(a=0.0, b=1.0) if eta != 0 else stats.uniform()


def test_grid_draws_have_the_grid_moments() -> None:
    ref = grid_reference(load_spec(ROOT / "quartic_bimodal_1d.py"))
    draws = ref.sample(50_000, seed=0)
    stats_ = torch.stack([draws[:, 0] ** 2, draws[:, 0] ** 4], -1)
    stderr = stats_.std(0) / math.sqrt(len(draws))
    assert ((stats_.mean(0) - torch.from_numpy(ref.moments)).abs() < 4 * stderr).all()
