"""The mixture experiment (issue 20): its separated-modes cases against their closed-form answers, its runs."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate

from maxent_mdn.experiments import problem_for, runs
from maxent_mdn.experiments.mixture_cases import (
    SEPARATIONS,
    separated_modes,
    separated_modes_reference,
    well_depth,
)
from maxent_mdn.reference import grid_reference


@pytest.mark.parametrize("separation", SEPARATIONS)
def test_the_grid_answer_is_the_quartic_well_the_moments_came_from(separation: int) -> None:
    """p_s is in the family of (x^2, x^4): the max-ent answer has eta = (2a, -a), and its entropy is p_s's."""
    a = well_depth(separation)
    ref = grid_reference(separated_modes(1, separation))
    assert ref.eta == pytest.approx([2 * a, -a], abs=1e-4 * max(1.0, a))

    def density(x: float) -> float:
        return math.exp(-a * (x * x - 1) ** 2)

    z = integrate.quad(density, -4, 4, points=[-1, 0, 1], limit=400)[0]
    entropy = integrate.quad(
        lambda x: density(x) / z * (a * (x * x - 1) ** 2 + math.log(z)), -4, 4, points=[-1, 0, 1], limit=400
    )[0]
    assert ref.entropy == pytest.approx(entropy, abs=1e-4)


def test_the_modes_sit_separation_widths_apart() -> None:
    """Width 1 / sqrt(8a) from the curvature -8a of log p_s at a mode: 2 / width = s."""
    for s in SEPARATIONS:
        a = well_depth(s)
        h = 1e-4  # the second difference of log p_s at x = 1
        curvature = (-a * ((1 + h) ** 2 - 1) ** 2 - a * ((1 - h) ** 2 - 1) ** 2) / h**2
        assert 2 * math.sqrt(-curvature) == pytest.approx(s, rel=1e-6)


def test_the_product_answer_in_d_coordinates_is_d_copies() -> None:
    one, four = separated_modes_reference(1, 8), separated_modes_reference(4, 8)
    assert four.entropy == pytest.approx(4 * one.entropy, rel=1e-12)
    x = torch.tensor([[1.0, -1.0, 1.0, 0.0]], dtype=torch.float64)
    parts = sum(one.log_prob(x[:, i : i + 1]) for i in range(4))
    assert four.log_prob(x) == pytest.approx(parts, abs=1e-10)
    # E x_i^4 of the product answer is the constraint's target
    problem = separated_modes(4, 8)
    assert problem.dim == 4 and len(problem.rows) == 8


@pytest.mark.parametrize("bad", [0, -4, float("nan"), "8"])
def test_a_separation_that_is_not_a_positive_number_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="separation must be a positive number"):
        separated_modes(1, bad)  # type: ignore[arg-type]


def test_the_mixture_experiment_has_three_sweeps_and_every_case_resolves() -> None:
    full = runs("mixture", quick=False, seeds=3)
    assert {r.experiment for r in full} == {"mixture_separation", "mixture_flows", "mixture_modes"}
    # three seeds of every setting; every base of the flow sweep on every flow, RAD beside four of them
    flows = [r for r in full if r.experiment == "mixture_flows" and r.seed == 0]
    assert len(flows) == 2 * (6 * 3 + 4)
    assert {r.settings["base"] for r in flows} == {"gaussian", "gumbel-mog", "exact-mog", "rad", "rad-spline"}
    rads = {(r.settings["transform"], r.settings.get("bins"), r.settings["base"]) for r in flows}
    assert rads >= {("coupling", None, "rad"), *(("spline", b, "rad-spline") for b in (4, 8, 16))}
    for case in {r.case for r in full}:
        assert problem_for(case).name == case
    quick = runs("mixture", quick=True, seeds=1)
    assert {r.experiment for r in quick} == {"mixture_separation", "mixture_flows", "mixture_modes"}
    assert all(r.settings["steps"] == 250 for r in quick)  # the smoke budget


def test_a_sweep_run_that_diverges_is_a_row_and_any_other_run_that_diverges_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A weak flow diverging is the flow-strength sweep's data (KL inf, the reason kept); elsewhere it is an error."""
    from maxent_mdn.experiments import Run, runner

    def diverging(*args: object, **kwargs: object) -> None:
        raise FloatingPointError("step 490: the constraint violations diverged")

    monkeypatch.setattr("maxent_mdn.training.solve", diverging)
    settings = {"transform": "planar", "layers": 10, "base": "gumbel-mog", "steps": 500}
    rows = runner.execute(Run("mixture_flows", "modes-2d-sep8", "solve", 0, settings))["mixture_flows"]
    (row,) = rows
    assert row["kl"] == math.inf and not row["converged"] and row["steps"] == 490
    assert (row["transform"], row["layers"], row["base"]) == ("planar", 10, "gumbel-mog")
    assert "diverged" in row["diverged"] and row["cpu_seconds"] >= 0
    with pytest.raises(FloatingPointError, match="diverged"):
        runner.execute(Run("multimodal", "modes-1d-sep4", "solve", 0, {"base": "gaussian"}))


def test_a_rad_row_names_the_couplings_between_its_folds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A RAD base ignores ``transform``, so its row must name RAD's own couplings, not the default spline."""
    from maxent_mdn.experiments import Run, runner

    def diverging(*args: object, **kwargs: object) -> None:
        raise FloatingPointError("step 3: the constraint violations diverged")

    monkeypatch.setattr("maxent_mdn.training.solve", diverging)
    for base, transform in (("rad", "coupling"), ("rad-spline", "spline")):
        run = Run("mixture_flows", "modes-2d-sep8", "solve", 0, {"base": base})
        (row,) = runner.execute(run)["mixture_flows"]
        assert (row["base"], row["transform"]) == (base, transform)
