"""Reproduction experiments: cases against their known answers, the run registry, figures from CSVs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from maxent_mdn.cli import main
from maxent_mdn.experiments import EXPERIMENTS, ReproductionError, Run, problem_for, reproduce, runs
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
    "case",
    ["dirichlet-3d", "dirichlet-5d", "dirichlet-20d", "trimodal-1d", "option-pricing", "power-lognormal-8"],
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
            "kl_knn": rng.uniform(0.01, 0.1),
            "converged": bool(s),
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
    scale = [
        {
            **{k: v for k, v in row.items() if k != "pricing_error"},
            "case": c,
            "base": "gumbel-mog",
            "dim": d,
            "rows": 8,
            "kl_upper": 2 * row["kl"],
            "worst_row_pct": 0.5,
            "constraints_met": True,
        }
        for row in solve[:2]
        for c, d in (("dirichlet-10d", 10), ("power-bimodal-8", 1), ("quartic-product-4d", 4))
    ]
    mixture = {
        sweep: pd.DataFrame(
            [
                {
                    "case": case,
                    "dim": dim,
                    "base": b,
                    "components": 8,
                    "transform": transform,
                    "layers": layers,
                    "bins": 16,
                    "seed": s,
                    "kl": rng.uniform(0.001, 0.1),
                    "converged": bool(s),
                    "steps": 6000,
                    "cpu_seconds": 100.0,
                }
                for case, dim in cases
                for b in bases[:3]
                for transform, layers in (("planar", 10), ("spline", None))
                for s in range(2)
            ]
        )
        for sweep, cases in (
            ("mixture_separation", [("modes-1d-sep4", 1), ("modes-1d-sep16", 1), ("modes-2d-sep8", 2)]),
            ("mixture_flows", [("modes-2d-sep8", 2), ("trimodal-1d", 1)]),
            ("mixture_modes", [("modes-4d-sep8", 4)]),
        )
    }
    return {
        **mixture,
        "scale": pd.DataFrame(scale),
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
    table = (out / "results.md").read_text().splitlines()
    # header; dirichlet, multimodal, option: 2 cases x 4 bases; estimators, temperature: 2 cases x 1 setting;
    # scale: 3 cases x 1 setting
    assert len(table) == 2 + 3 * 8 + 2 + 2 + 3 and "| 1/2 |" in table[2]
    assert "| scale | power-bimodal-8 | gumbel-mog |" in "\n".join(table)
    scale = (out / "scale.md").read_text().splitlines()  # the scale experiment's own table, one row per case
    assert len(scale) == 2 + 3 and scale[3].startswith("| power-bimodal-8 | 1 | 8 |")
    assert scale[3].endswith("| 2/2 | 1/2 | 1/2 | 10 |")  # seed 1 "converged" with a KL above 0.02: counted
    mixture = (out / "mixture.md").read_text().splitlines()  # one row per sweep, case, flow, K and base
    assert len(mixture) == 2 + (3 + 2 + 1) * 2 * 3
    assert "| separation | modes-1d-sep4 | planar-10 | - | gaussian | 2 |" in "\n".join(mixture)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == len(FIGURES) and len(list(out.glob("*.pdf"))) == len(FIGURES)
    assert all((out / p).stat().st_size > 5000 for p in pngs)


def test_the_scale_figure_and_table_show_the_previous_defaults_beside(tmp_path: Path) -> None:
    """``scale_previous.csv`` (the same runs at earlier defaults) is drawn behind ``scale.csv`` and its KL
    and converged count get a last column of ``scale.md``; a case it lacks gets a dash."""
    results, out = tmp_path / "results", tmp_path / "figures"
    results.mkdir()
    scale = _synthetic_tables()["scale"]
    scale.to_csv(results / "scale.csv", index=False)
    before = scale[scale["case"] != "dirichlet-10d"].assign(kl=0.5, converged=False)
    before.to_csv(results / "scale_previous.csv", index=False)
    assert main(["figures", "--results", str(results), "--out", str(out)]) == 0
    lines = (out / "scale.md").read_text().splitlines()
    assert lines[0].endswith("| KL before (converged) |") and len(lines) == 2 + 3
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert rows["power-bimodal-8"].endswith("| 0.5000 ± 0.0000 (0/2) |")
    assert rows["dirichlet-10d"].endswith("| – |")
    assert (out / "scale.png").stat().st_size > 5000


def test_figures_without_results_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "f")]) == 2
    assert "run maxent-mdn reproduce first" in capsys.readouterr().err


def _fake_runs(name: str, quick: bool, seeds: int) -> list[Run]:
    return [Run(name, f"case{i}", "solve", s, {"tau": 0.1}) for s in range(seeds) for i in range(3)]


class _FakeExecute:
    """Records the runs it is asked for; fails on the ones in ``failing``."""

    def __init__(self, failing: set[tuple[str, int]] = frozenset()) -> None:
        self.calls: list[tuple[str, int]] = []
        self.failing = failing

    def __call__(self, run: Run) -> dict[str, list[dict]]:
        self.calls.append((run.case, run.seed))
        if (run.case, run.seed) in self.failing:
            raise FloatingPointError("NaN in the entropy term")
        return {run.experiment: [{"case": run.case, "seed": run.seed, "kl": np.float64(0.5)}]}


def test_an_interrupted_reproduction_keeps_its_runs_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maxent_mdn.experiments import runner

    monkeypatch.setattr(runner, "runs", _fake_runs)
    flaky = _FakeExecute(failing={("case1", 0)})
    monkeypatch.setattr(runner, "execute", flaky)
    with pytest.raises(ReproductionError, match=r"(?s)1 run\(s\) failed.*case1 seed 0.*NaN in the entropy"):
        reproduce(["temperature"], quick=True, seeds=2, jobs=1, out=tmp_path, log=lambda s: None)
    assert len(flaky.calls) == 6
    saved = pd.read_csv(tmp_path / "temperature.csv")
    assert len(saved) == 5 and ("case1", 0) not in set(zip(saved["case"], saved["seed"], strict=True))

    # the next call redoes only the failed run; the table comes out in registry order
    healthy = _FakeExecute()
    monkeypatch.setattr(runner, "execute", healthy)
    tables = reproduce(["temperature"], quick=True, seeds=2, jobs=1, out=tmp_path, log=lambda s: None)
    assert healthy.calls == [("case1", 0)]
    expected = [(f"case{i}", s) for s in range(2) for i in range(3)]
    assert list(zip(tables["temperature"]["case"], tables["temperature"]["seed"], strict=True)) == expected
    assert pd.read_csv(tmp_path / "temperature.csv")["kl"].tolist() == [0.5] * 6

    # a torn last line (killed mid-write) costs that one run; --fresh redoes everything
    journal = tmp_path / "runs.jsonl"
    journal.write_text(journal.read_text()[:-20])
    torn = _FakeExecute()
    monkeypatch.setattr(runner, "execute", torn)
    with pytest.warns(UserWarning, match="unreadable journal line"):
        reproduce(["temperature"], quick=True, seeds=2, jobs=1, out=tmp_path, log=lambda s: None)
    assert len(torn.calls) == 1
    reread = _FakeExecute()
    monkeypatch.setattr(runner, "execute", reread)
    with pytest.warns(UserWarning, match="unreadable journal line"):  # the torn line is still there...
        reproduce(["temperature"], quick=True, seeds=2, jobs=1, out=tmp_path, log=lambda s: None)
    assert reread.calls == []  # ...but the run redone after it was not glued onto it
    fresh = _FakeExecute()
    monkeypatch.setattr(runner, "execute", fresh)
    reproduce(["temperature"], quick=True, seeds=2, jobs=1, out=tmp_path, log=lambda s: None, fresh=True)
    assert len(fresh.calls) == 6


def test_reproduce_rejects_bad_job_counts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["reproduce", "--quick", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert "jobs and seeds must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("settings", "bins"),
    [
        ({}, 16),
        ({"transform": "autoregressive"}, 16),
        ({"transform": "coupling"}, None),
        ({"base": "rad"}, None),
    ],
)
def test_a_row_names_the_spline_bins_only_of_a_model_that_has_splines(
    settings: dict, bins: int | None
) -> None:
    from maxent_mdn.experiments.runner import _run_columns
    from maxent_mdn.training import SolverConfig

    run = Run("scale", "gaussian_3d", "solve", 0, settings)
    row = _run_columns(run, problem_for("gaussian_3d"), SolverConfig(**settings))
    assert row["bins"] == bins
    assert row["transform"] == {"rad": "coupling"}.get(
        settings.get("base"), settings.get("transform", "spline")
    )
