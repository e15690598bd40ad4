"""Statistical acceptance of the solver (slow): every shipped spec with a reference, default settings."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from maxent_mdn import Covariance, MaxEntProblem, Mean, load_spec
from maxent_mdn.training import solve

ROOT = Path(__file__).resolve().parents[1] / "constraints"
SPECS = sorted(p.stem for p in ROOT.glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
def test_default_solve_reaches_the_reference(
    spec: str, record_property: Callable[[str, object], None]
) -> None:
    problem = load_spec(ROOT / f"{spec}.py")
    start = time.perf_counter()
    result = solve(problem, progress=False, seed=0)
    seconds = time.perf_counter() - start
    assert result.reference is not None, "every shipped spec has a reference"
    # KL from the model's own density and, independently, from a nearest-neighbour entropy
    assert result.kl_to_reference <= 0.02, result.table()
    assert result.kl_knn <= 0.02, result.table()
    assert result.constraints["within_1pct"].all(), result.table()
    assert result.converged, result.table()
    # wall-clock is measured, not asserted (a busy or slow machine must not fail the suite):
    # benchmarks/ reports it against the 5-minute goal
    record_property("seconds", seconds)
    if seconds > 300:
        warnings.warn(f"{spec}: solve took {seconds:.0f} s, over the 5-minute goal", stacklevel=1)
    if spec == "dirichlet":  # MEFN's case: H = -1.2443
        assert abs(result.entropy - (-1.2443)) < 0.01, result.table()


#: the first problems a new user is likely to write; seed 0 of each is in the test above
FIRST_PROBLEMS = ("gaussian_3d", "exponential", "truncated_normal", "beta")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("spec", FIRST_PROBLEMS)
def test_first_problems_converge_with_defaults_for_every_seed(spec: str, seed: int) -> None:
    """With seed 0 above: 3 of 3 seeds converge with the default settings, to the same KL bound."""
    result = solve(load_spec(ROOT / f"{spec}.py"), progress=False, seed=seed)
    assert result.converged, result.table()
    assert result.kl_to_reference <= 0.02, result.table()
    assert result.kl_knn is None or result.kl_knn <= 0.02, result.table()
    assert result.constraints["within_1pct"].all(), result.table()


@pytest.mark.slow
def test_a_gaussian_far_from_the_origin_on_its_own_scale() -> None:
    """Mean (10, 0, -5), standard deviations (3, 1, 0.2): without the standardization read off the targets the
    default solve ended at KL 205 (the splines are the identity beyond |x| = 10); with it, the problem is as
    easy as a standard one."""
    mean, sd = [10.0, 0.0, -5.0], [3.0, 1.0, 0.2]
    corr = [[1.0, 0.5, 0.3], [0.5, 1.0, -0.4], [0.3, -0.4, 1.0]]
    cov = [[corr[i][j] * sd[i] * sd[j] for j in range(3)] for i in range(3)]
    problem = MaxEntProblem(3, [Mean(mean), Covariance(cov, mean=mean)], name="far-gaussian")
    result = solve(problem, progress=False, seed=0)
    assert result.kl_to_reference <= 0.02, result.table()
    assert result.constraints["within_1pct"].all(), result.table()
