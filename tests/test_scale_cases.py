"""The ``scale`` experiment's cases: power moments on an interval, products of bimodal quartics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from maxent_mdn.experiments import problem_for, runs
from maxent_mdn.experiments.runner import _REFERENCES
from maxent_mdn.experiments.scale_cases import (
    POWER_CASES,
    SCALE_CASES,
    power_moments,
    quartic_product,
    quartic_product_reference,
)
from maxent_mdn.problem import check_feasible
from maxent_mdn.reference import GaussianReference, ProductReference, reference_for


def test_power_moment_targets_are_the_moments_of_the_density() -> None:
    """Beta(2, 6): E x = 2/8, E x^2 = 2*3/(8*9), E x^3 = 2*3*4/(8*9*10) (closed forms)."""
    problem = power_moments("skewed", 3)
    np.testing.assert_allclose(problem.targets.numpy(), [0.25, 1 / 12, 1 / 30], rtol=1e-9)
    with pytest.raises(ValueError, match="unknown density 'flat'"):
        power_moments("flat", 3)
    with pytest.raises(ValueError, match="order must be an integer in 1..12"):
        power_moments("skewed", 0)


@pytest.mark.parametrize(("density", "order"), POWER_CASES)
def test_every_power_case_has_a_grid_answer_that_meets_its_rows(density: str, order: int) -> None:
    """Up to 10 nearly collinear rows: the grid dual still meets each within 1% of its scale."""
    problem = power_moments(density, order)
    check_feasible(problem)
    ref = reference_for(problem)
    table = ref.constraint_table()
    assert table["within_1pct"].all(), table
    # the answer integrates to one (midpoint rule on its own grid: exact up to float64)
    assert math.isclose(float(np.exp(ref.grid_log_prob).sum() * ref.grid.cell), 1.0, rel_tol=1e-9)


def test_a_product_reference_is_the_sum_of_its_parts() -> None:
    """Entropy and log-density add over blocks; draws of a block have that block's law."""
    one, two = GaussianReference([0.0], [[4.0]]), GaussianReference([1.0, -1.0], [[1.0, 0.5], [0.5, 2.0]])
    ref = ProductReference([one, two], [1, 2])
    assert ref.entropy == pytest.approx(one.entropy + two.entropy, abs=1e-12)
    x = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(ref.log_prob(x), one.log_prob(x[:, :1]) + two.log_prob(x[:, 1:]))
    draws = ref.sample(40_000, seed=3)
    assert draws.shape == (40_000, 3)
    assert float(draws[:, 0].var()) == pytest.approx(4.0, rel=0.03)  # 4 se of a variance from 40k draws: 2.8%
    with pytest.raises(ValueError, match="one dimension per part"):
        ProductReference([one], [1, 2])
    with pytest.raises(ValueError, match="has 3 coordinates"):
        ref.log_prob(torch.zeros(2, 4))


def test_the_quartic_product_answer_meets_its_constraints_and_integrates_to_one() -> None:
    """D copies of the 1D bimodal answer: H* = D x 1.14171; E x_i^2 = 1 and E x_i^4 = 1.5 by quadrature."""
    ref = quartic_product_reference(3)
    assert ref.entropy == pytest.approx(3 * 1.14171, abs=3e-5)
    one = ref.parts[0]

    def density(x: float, k: int = 0) -> float:
        return x**k * math.exp(float(one.log_prob(torch.tensor([[x]], dtype=torch.float64))))

    for k, target in ((0, 1.0), (2, 1.0), (4, 1.5)):
        assert integrate.quad(density, -6, 6, args=(k,), limit=200)[0] == pytest.approx(target, abs=1e-4)
    problem = quartic_product(3)
    draws = ref.sample(50_000, seed=1)
    means = problem.statistics(draws).mean(0).numpy()
    np.testing.assert_allclose(means, [1.0] * 3 + [1.5] * 3, atol=0.05)  # 4 se: sd(x^4) ~ 2 / sqrt(50k) x 4


def test_the_scale_experiment_runs_every_case_within_the_time_limit() -> None:
    full = runs("scale", quick=False, seeds=3)
    assert {r.case for r in full} == set(SCALE_CASES) and len(full) == 3 * len(SCALE_CASES)
    assert all(r.settings == {"time_limit": 300.0, "steps": None} for r in full)  # as `train` runs by default
    for case in SCALE_CASES:  # every case has an exact answer: a closed form, the grid, or its own (products)
        problem = problem_for(case)
        if problem.support.flow_dim(problem.dim) > 2:
            assert case in _REFERENCES or reference_for(problem) is not None, case


@pytest.mark.slow
def test_eight_power_moments_on_a_wide_interval_reach_the_answer_for_most_seeds() -> None:
    """E x^k, k = 1..8, of the shifted lognormal on [0, 5]: the statistics' variances span ten orders of
    magnitude. With the whitening metric floored on the covariance (not the correlations) no seed met its
    constraints (KL 0.68-0.73, scale.csv before the fix); default settings, seeds 0-2, the median KL must be
    within the issue's 0.01, at least 2 of 3 must converge, and none may converge wrongly. Measured (one thread):
    KL 0.0033, 0.0045, 0.0039, all three converged in 46-58 s."""
    from maxent_mdn.training import solve

    results = [solve(power_moments("lognormal", 8), progress=False, seed=seed) for seed in (0, 1, 2)]
    kls = [r.kl_to_reference for r in results]
    assert sorted(kls)[1] <= 0.01, kls
    assert sum(r.converged for r in results) >= 2, [r.why_not_converged for r in results]
    assert not any(r.converged and r.kl_to_reference > 0.02 for r in results), kls


#: issue 19's cases that CI's slow suite checks over three seeds here (Dirichlet D = 10 and eight power
#: moments of the lognormal have their own tests); measured with the code of bdb3541 (one thread, a 5-minute
#: limit that none of these runs reached; `experiments/results/scale.csv`): KL, steps, worst row
SEEDED_CASES = {
    "trimodal-1d": "KL 0.0013-0.0021 at 3,000-4,500 steps, worst row 0.21x, 3 of 3 converged",
    "power-bimodal-10": "KL 0.0013-0.0016 at 3,000-4,000 steps, worst row 0.61x, 3 of 3 converged",
    "quartic_2d": "KL 0.0005-0.0011 at 3,750-4,750 steps, worst row 0.56x, 3 of 3 converged",
}


#: the same check, at scale (``pytest -m scale``; not in CI): measured as above
SCALE_SEEDED_CASES = {
    "dirichlet-5d": "KL 0.0027-0.0030 at 3,000-3,750 steps, worst row 0.49x, 3 of 3 converged, 121-163 s",
    "quartic-product-4d": "KL 0.0014-0.0027 at 4,250-5,500 steps, worst row 0.71x, 3 of 3 converged, 179-228 s",
}


def _most_seeds_converge(case: str) -> None:
    """Default settings, seeds 0-2: the median KL within issue 19's 0.01, at least 2 of 3 converged with every
    row within 1% of its scale, and none converged with a KL above 0.02."""
    from maxent_mdn.training import solve

    reference = _REFERENCES[case]() if case in _REFERENCES else True
    results = [solve(problem_for(case), progress=False, seed=s, reference=reference) for s in (0, 1, 2)]
    kls = [r.kl_to_reference for r in results]
    table = "\n".join(r.table() for r in results)
    assert sorted(kls)[1] <= 0.01, (kls, table)
    complete = [bool(r.converged and r.constraints["within_1pct"].all()) for r in results]
    assert sum(complete) >= 2, ([r.why_not_converged for r in results], table)
    assert not any(r.converged and r.kl_to_reference > 0.02 for r in results), (kls, table)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SEEDED_CASES))
def test_trimodal_ten_power_moments_and_quartic_2d_converge_for_most_seeds(case: str) -> None:
    """:func:`_most_seeds_converge` (measured: :data:`SEEDED_CASES`). At the first measurement (98e381a,
    ``scale_previous.csv``) none of these three trimodal runs converged (KL 0.41-148), nor the ten two-bump
    moments (0.012-0.018), and ``quartic_2d`` in 1 of 3 (0.0070-0.0108)."""
    _most_seeds_converge(case)


@pytest.mark.scale
@pytest.mark.parametrize("case", sorted(SCALE_SEEDED_CASES))
def test_dirichlet_5d_and_the_4d_quartic_product_converge_for_most_seeds(case: str) -> None:
    """:func:`_most_seeds_converge` (measured: :data:`SCALE_SEEDED_CASES`; at 98e381a: KL 0.018-0.020, 2 of 3
    converged, and 0.013-0.021, none)."""
    _most_seeds_converge(case)
