"""Reproduction experiments: cases against their known answers, the run registry, figures from CSVs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from maxent_mdn.cli import main
from maxent_mdn.experiments import EXPERIMENTS, problem_for, runs
from maxent_mdn.experiments.cases import OPTION, true_call_price
from maxent_mdn.problem import check_feasible
from maxent_mdn.reference import reference_for
from maxent_mdn.viz.figures import FIGURES


def test_trimodal_case_reference_recovers_the_generating_density() -> None:
    ref = reference_for(problem_for("trimodal-1d"))
    np.testing.assert_allclose(ref.eta, [-2.734, 2.295, -0.5], atol=1e-3)


def test_option_prices_come_from_a_risk_neutral_law() -> None:
    forward = OPTION["s0"] * math.exp(OPTION["r"] * OPTION["t"])
    disc = math.exp(-OPTION["r"] * OPTION["t"])
    # put-call parity with a zero strike: C(0) = S0; prices fall and are convex in the strike
    assert true_call_price(0.0) == pytest.approx(disc * forward, rel=1e-6)
    prices = [true_call_price(k) for k in (70, 80, 90, 100, 110, 120, 130)]
    assert all(np.diff(prices) < 0) and all(np.diff(prices, 2) > 0)


@pytest.mark.parametrize(
    "case", ["dirichlet-3d", "dirichlet-5d", "dirichlet-20d", "trimodal-1d", "option-pricing"]
)
def test_every_case_is_feasible_and_has_a_reference(case: str) -> None:
    problem = problem_for(case)
    check_feasible(problem)
    assert reference_for(problem) is not None


def test_registry_covers_every_base_and_quick_is_smaller() -> None:
    for name in EXPERIMENTS:
        quick, full = runs(name, quick=True, seeds=1), runs(name, quick=False, seeds=3)
        assert 0 < len(quick) < len(full)
    bases = {r.settings["base"] for r in runs("multimodal", quick=False, seeds=1)}
    assert bases == {"gaussian", "gumbel-mog", "exact-mog", "rad"}
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        runs("nope", quick=True, seeds=1)


def _synthetic_tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    bases = ["gaussian", "gumbel-mog", "exact-mog", "rad"]
    solve = [
        {
            "case": c,
            "base": b,
            "seed": s,
            "kl": rng.uniform(0.01, 0.1),
            "max_violation": rng.uniform(0.001, 0.1),
            "entropy_error": rng.normal(0, 0.01),
            "pricing_error": rng.uniform(0, 1),
            "seconds": 10.0,
            "tau": 0.5,
            "anneal_rate": 0.0,
            "estimator": "nested",
        }
        for c in ("dirichlet-3d", "dirichlet-5d")
        for b in bases
        for s in range(2)
    ]
    curves = [
        {"case": "q", "base": b, "seed": 0, "x": x, "q": 0.3, "p": 0.3}
        for b in bases
        for x in (-1.0, 0.0, 1.0)
    ]
    est = [
        {"estimator": e, "nested": m, "entropy": 1.0 + 1 / m, "truth": 1.0}
        for e in ("nested", "loo")
        for m in (4, 16)
    ]
    density = [
        {"case": d, "base": b, "seed": 0, "test_ll": -2.5, "test_ll_stderr": 0.01}
        for d in ("moons", "rings")
        for b in bases
    ]
    return {
        "dirichlet": pd.DataFrame(solve),
        "multimodal": pd.DataFrame(solve),
        "option": pd.DataFrame(solve),
        "multimodal_curves": pd.DataFrame(curves),
        "estimator_curves": pd.DataFrame(est),
        "estimators": pd.DataFrame(solve),
        "temperature": pd.DataFrame(solve),
        "density": pd.DataFrame(density),
    }


def test_figures_are_drawn_from_the_csvs_alone(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "figures"
    results.mkdir()
    for name, frame in _synthetic_tables().items():
        frame.to_csv(results / f"{name}.csv", index=False)
    assert set(_synthetic_tables()) == set(FIGURES)
    assert main(["figures", "--results", str(results), "--out", str(out)]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == len(FIGURES) and len(list(out.glob("*.pdf"))) == len(FIGURES)
    assert all((out / p).stat().st_size > 5000 for p in pngs)


def test_figures_without_results_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "f")]) == 2
    assert "run maxent-mdn reproduce first" in capsys.readouterr().err
