"""The multipliers' warm start from the grid dual (one or two free coordinates)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from scipy import integrate, optimize

from maxent_mdn import Expectation, MaxEntProblem, Mean
from maxent_mdn.experiments.runner import problem_for
from maxent_mdn.problem import Interval
from maxent_mdn.training import solve
from maxent_mdn.training.warm_start import grid_multipliers


def test_the_start_is_minus_the_closed_form_eta_of_the_truncated_exponential() -> None:
    """p ∝ e^{ηx} on [0, 1] with mean 0.3: 1/(1 - e^{-η}) - 1/η = 0.3 fixes η; the Lagrangian's λ is -η."""
    eta = optimize.brentq(lambda e: 1.0 / (1.0 - math.exp(-e)) - 1.0 / e - 0.3, -50.0, -1e-6, xtol=1e-12)
    lam = grid_multipliers(MaxEntProblem(1, [Mean([0.3])], support=Interval(0.0, 1.0)))
    assert lam is not None and lam.dtype == torch.float64
    assert float(lam[0]) == pytest.approx(-eta, rel=1e-3)


def test_an_active_lower_bound_gets_a_positive_multiplier_whose_gibbs_form_meets_the_targets() -> None:
    """Rows ``>=`` have g = b - E T, so λ = +η there; integrating e^{-Σ s_j λ_j T_j} must give the targets."""
    problem = MaxEntProblem(
        1,
        [Mean(1.0), Expectation(lambda x: x[..., 0] ** 2, 2.5, name="m2", relation=">=")],
        support=Interval(0.0, 5.0),
    )
    lam = grid_multipliers(problem)
    assert lam is not None and float(lam[1]) > 0.1  # active: the truncated exponential has E x² ≈ 1.9
    sign = [1.0, -1.0]

    def density(x: float) -> float:
        return math.exp(-(sign[0] * float(lam[0]) * x + sign[1] * float(lam[1]) * x * x))

    z = integrate.quad(density, 0.0, 5.0)[0]
    moments = [integrate.quad(lambda x, k=k: x**k * density(x), 0.0, 5.0)[0] / z for k in (1, 2)]
    assert moments == pytest.approx([1.0, 2.5], rel=2e-3)


def test_no_start_beyond_two_free_coordinates_and_a_failed_grid_warns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert grid_multipliers(problem_for("gaussian_3d")) is None

    def broken(problem: MaxEntProblem) -> None:
        raise ValueError("the box keeps widening")

    monkeypatch.setattr("maxent_mdn.reference.grid.grid_reference", broken)
    with pytest.warns(RuntimeWarning, match="no grid warm start.*box keeps widening.*start at 0"):
        assert grid_multipliers(MaxEntProblem(1, [Mean([0.3])], support=Interval(0.0, 1.0))) is None


@pytest.mark.parametrize("warm", [True, False])
def test_solve_trains_its_first_inner_run_at_the_grid_multipliers(warm: bool) -> None:
    problem = MaxEntProblem(1, [Mean([0.3])], support=Interval(0.0, 1.0), name="warm")
    small = {"inner_steps": 10, "test_batches": 4, "test_batch_size": 64, "eval_samples": 500, "batch": 64}
    small.update(transform="coupling", layers=1, trace_samples=0, log_every=5, stop_samples=0)
    result = solve(problem, steps=10, warm_start=warm, progress=False, **small)
    first = float(result.history["lambda:mean[0]"].iloc[0])
    expected = float(grid_multipliers(problem)[0]) if warm else 0.0
    assert first == pytest.approx(expected, abs=1e-9)
    assert result.config.warm_start is warm
    # from the answer's multipliers, a quarter step (config.warm_dual_step); from 0, MEFN's full step
    assert result.lagrangian["dual_step"] == (0.25 if warm else 1.0)


def test_a_solve_whose_reference_is_the_grid_solves_that_grid_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm start takes η from the grid reference the solve already holds instead of solving it again."""
    from maxent_mdn import reference
    from maxent_mdn.reference import grid

    solved = []

    def counted(problem: MaxEntProblem, points: int | None = None) -> grid.GridReference:
        solved.append(problem.name)
        return original(problem, points)

    original = grid.grid_reference
    monkeypatch.setattr(grid, "grid_reference", counted)
    monkeypatch.setattr(reference, "grid_reference", counted)
    square = Expectation(lambda x: x[..., 0] ** 2, 0.15, name="m2")  # no closed form: the reference is a grid
    problem = MaxEntProblem(1, [Mean([0.3]), square], support=Interval(0.0, 1.0), name="once")
    small = {"inner_steps": 10, "test_batches": 4, "test_batch_size": 64, "eval_samples": 500, "batch": 64}
    small.update(transform="coupling", layers=1, trace_samples=0, log_every=5, stop_samples=0)
    result = solve(problem, steps=10, progress=False, reference=True, **small)
    assert solved == ["once"]
    assert result.reference is not None and result.reference.kind == "grid"
    first = float(result.history["lambda:mean[0]"].iloc[0])
    assert first == pytest.approx(-float(result.reference.eta[0]), abs=1e-9)  # the start is that grid's -η
    assert grid_multipliers(problem) is not None and solved == ["once", "once"]  # alone, it solves its own


def test_no_warm_start_reaches_the_solver_and_is_refused_where_it_means_nothing(
    tmp_path: Path,
    solve_settings: Callable[[list[str]], dict[str, object]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from maxent_mdn.cli import main

    argv = ["train", "interval", "--no-progress"]
    assert solve_settings([*argv, "--out", str(tmp_path / "a"), "--no-warm-start"])["warm_start"] is False
    assert "warm_start" not in solve_settings([*argv, "--out", str(tmp_path / "b")])  # the default: True
    grid = ["train", "interval", "--method", "grid", "--no-warm-start", "--out", str(tmp_path / "c")]
    assert main(grid) == 2
    assert "--method grid trains no flow; drop --no-warm-start" in capsys.readouterr().err


def _truncated_exponential_eta(mean: float) -> float:
    """η of p ∝ e^{ηx} on [0, 1] with the given mean: 1/(1 - e^{-η}) - 1/η = mean (η = 0 at 1/2)."""
    if abs(mean - 0.5) < 1e-12:
        return 0.0
    lo, hi = (-200.0, -1e-4) if mean < 0.5 else (1e-4, 200.0)  # near 0 the formula cancels
    return optimize.brentq(lambda e: 1.0 / (1.0 - math.exp(-e)) - 1.0 / e - mean, lo, hi, xtol=1e-12)


def test_a_separable_problem_in_three_dimensions_starts_at_each_factors_closed_form() -> None:
    """Means on [0, 1]³ touch one coordinate each: p* is a product of truncated exponentials, one grid per coordinate."""
    means = [0.3, 0.62, 0.45]
    lam = grid_multipliers(MaxEntProblem(3, [Mean(means)], support=Interval(0.0, 1.0), name="box"))
    assert lam is not None
    expected = [-_truncated_exponential_eta(m) for m in means]
    assert lam.tolist() == pytest.approx(expected, rel=2e-3, abs=2e-3)


def test_coupled_or_simplex_problems_get_no_start_and_no_warning(recwarn: pytest.WarningsRecorder) -> None:
    assert grid_multipliers(problem_for("gaussian_3d")) is None  # the covariance couples all three
    assert grid_multipliers(problem_for("dirichlet-5d")) is None  # the simplex is no product
    triple = Expectation(lambda x: x[..., 0] * x[..., 1] * x[..., 2], 0.1, name="x0x1x2")
    assert grid_multipliers(MaxEntProblem(3, [Mean([0.5] * 3), triple], support=Interval(0.0, 1.0))) is None
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_the_quartic_products_start_at_the_one_dimensional_answer_in_every_coordinate() -> None:
    one = grid_multipliers(problem_for("quartic_bimodal_1d"))
    for dim in (4, 8):
        lam = grid_multipliers(problem_for(f"quartic-product-{dim}d"))
        assert lam is not None
        np_lam = lam.reshape(2, dim)  # E x_d² rows, then E x_d⁴ rows
        for d in range(dim):
            assert np_lam[:, d].tolist() == pytest.approx(one.tolist(), rel=1e-3)
