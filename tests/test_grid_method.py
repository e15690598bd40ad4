"""``train --method grid``: exact answers of one- and two-coordinate problems without a flow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maxent_mdn import MaxEntProblem, Mean, load_spec
from maxent_mdn.cli import main
from maxent_mdn.problem import Interval
from maxent_mdn.reference import closed_form_reference, solve_grid

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("spec", "tolerance"), [("interval", 1e-6), ("exponential", 1e-4), ("dirichlet", 1e-4)]
)
def test_the_grid_answer_is_the_closed_form(spec: str, tolerance: float) -> None:
    """Midpoint-rule error bounds: 4001 cells on [0, 1] or a growing box in 1D, 241^2 cells on the 3-simplex."""
    problem = load_spec(spec)
    solution = solve_grid(problem)
    exact = closed_form_reference(problem)
    assert abs(solution.entropy - exact.entropy) <= tolerance
    assert solution.constraints["within_1pct"].all()
    assert float(solution.constraints["violation"].max()) < 1e-6


def test_the_multipliers_are_the_closed_forms() -> None:
    """Exponential with mean 2: p*(x) = exp(-x / 2) / 2, so eta = -1/2 and log Z = log 2."""
    solution = solve_grid(load_spec("exponential"))
    assert solution.reference.eta[0] == pytest.approx(-0.5, abs=1e-4)
    assert solution.reference.log_norm == pytest.approx(np.log(2.0), abs=1e-4)
    summary = solution.summary()
    assert summary["method"] == "grid" and summary["eta"] == {"mean[0]": solution.reference.eta[0]}


def test_more_than_two_free_coordinates_and_bad_points_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 2 free coordinates; 'gaussian-3d' has 3"):
        solve_grid(load_spec("gaussian_3d"))
    problem = MaxEntProblem(1, [Mean([0.3])], support=Interval(0.0, 1.0))
    with pytest.raises(ValueError, match="at least 11"):
        solve_grid(problem, points=3)


def test_train_method_grid_writes_an_exact_run_that_sample_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert main(["train", "quartic_bimodal_1d", "--method", "grid", "--out", str(out)]) == 0
    summary = json.loads((out / "result.json").read_text())
    assert summary["method"] == "grid" and summary["converged"] and set(summary["eta"]) == {"m2", "m4"}
    assert summary["entropy"] == pytest.approx(1.1417, abs=1e-3)  # the grid reference of the slow tests
    draws = np.load(out / "samples.npy")
    assert draws.shape == (100_000, 1)
    assert np.mean(draws[:, 0] ** 2) == pytest.approx(1.0, abs=0.02)  # E x^2 = 1: 4 se of 100k draws ~ 0.016
    assert (out / "density.png").stat().st_size > 0
    assert "grid solution, H = 1.14" in capsys.readouterr().out
    assert main(["sample", str(out), "-n", "500", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (500, 1)


def test_sample_of_a_grid_run_rebuilds_the_stored_answer_and_refuses_an_edited_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """sample uses the run's eta, box and points (no new solve) and checks the spec's targets against them."""
    spec = tmp_path / "spec.py"
    spec.write_text(
        "from maxent_mdn import MaxEntProblem, Mean\nfrom maxent_mdn.problem import Interval\n"
        "problem = MaxEntProblem(1, [Mean([0.3])], support=Interval(0.0, 1.0), name='m')\n"
    )
    out = tmp_path / "run"
    assert main(["train", str(spec), "--method", "grid", "--grid-points", "501", "--out", str(out)]) == 0
    assert json.loads((out / "result.json").read_text())["points"] == 501
    assert main(["sample", str(out), "-n", "40000", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").mean() == pytest.approx(0.3, abs=0.006)  # 4 se of 40k draws (sd 0.26)
    spec.write_text(spec.read_text().replace("0.3", "0.4"))
    capsys.readouterr()
    assert main(["sample", str(out), "-n", "10", "--out", str(tmp_path / "t.npy")]) == 2
    assert "is not the problem" in capsys.readouterr().err and not (tmp_path / "t.npy").exists()


def test_grid_points_without_method_grid_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "interval", "--grid-points", "501", "--out", str(tmp_path / "run")]) == 2
    assert "add --method grid" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gaussian_3d", "--method", "grid"], "at most 2 free coordinates"),
        (["interval", "--method", "grid", "--base", "rad", "--steps", "10"], "drop --base, --steps"),
        (["interval", "--method", "grid", "--restarts", "2"], "drop --restarts"),
        (["interval", "--method", "grid", "--time-limit", "20"], "trains no flow; drop --time-limit\n"),
    ],
)
def test_train_method_grid_refuses_what_it_cannot_do(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["train", *argv, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "result.json").exists()
