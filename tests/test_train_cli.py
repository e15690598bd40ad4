"""`maxent-mdn train`: outputs, exit codes, reloadable model (short runs; accuracy is in the slow tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from maxent_mdn.cli import main
from maxent_mdn.training.checkpoint import CheckpointError
from maxent_mdn.training.outputs import load_model

ROOT = Path(__file__).resolve().parents[1]
# short runs, whose claims are files and exit codes: a verdict on 20,000 draws, not 200,000
SHORT = ["--steps", "30", "--batch", "64", "--no-progress", "--eval-samples", "20000"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    code = main(["train", str(ROOT / "constraints" / "dirichlet.py"), "--out", str(out), *SHORT])
    assert code == 3  # 30 steps cannot converge: reported, not hidden
    return out


def test_train_writes_every_output(run_dir: Path) -> None:
    summary = json.loads((run_dir / "result.json").read_text())
    for key in (
        "problem",
        "base",
        "entropy",
        "entropy_stderr",
        "constraints",
        "max_abs_violation",
        "reference_entropy",
        "kl_to_reference",
        "converged",
        "seconds",
    ):
        assert key in summary, key
    assert summary["problem"] == "dirichlet" and summary["converged"] is False
    assert abs(summary["reference_entropy"] - (-1.2443)) < 1e-4
    assert {"name", "index", "target", "value", "stderr"} <= set(summary["constraints"][0])
    samples = np.load(run_dir / "samples.npy")
    assert samples.shape == (100_000, 3) and samples.dtype == np.float64
    np.testing.assert_allclose(samples.sum(1), 1.0, atol=1e-5)
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0].startswith("step,outer,entropy,loss") and len(history) > 1
    assert (run_dir / "density.png").stat().st_size > 10_000
    assert (run_dir / "certificate.png").stat().st_size > 10_000
    assert summary["constraints_met"] is False and "not all met" in summary["why_not_converged"]


def test_model_reloads_to_the_same_flow(run_dir: Path) -> None:
    flow, meta = load_model(run_dir)
    assert meta["problem"]["name"] == "dirichlet"
    torch.manual_seed(3)
    again = flow.sample((5,))
    assert again.shape == (5, 3) and torch.allclose(again.sum(-1), torch.ones(5))


def test_corrupt_model_file_gets_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read model file"):
        load_model(bad)
    with pytest.raises(CheckpointError, match="model file not found"):
        load_model(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "missing_spec.py"], "spec file not found"),
        (
            ["train", str(ROOT / "constraints" / "exponential.py"), "--steps", "0"],
            "steps must be a positive integer",
        ),
        (["train", str(ROOT / "constraints" / "exponential.py"), "--tau", "-1"], "tau must be a positive"),
        (["train", "exponential", "--gap-tol", "0"], "gap_tol must be a positive"),
        (["train", "exponential", "--kl-upper-tol", "-1"], "kl_upper_tol must be a positive"),
        (["train", "exponential", "--stop-samples", "-1"], "stop_samples must be a non-negative integer"),
        (["train", "nosuch"], "nor a shipped spec: beta, dirichlet"),
        (["train", "exponential", "--base", "rad", "--transform", "planar"], "drop --transform"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "maxent_mdn", *args], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_time_limit_ends_the_run_unconverged_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = [
        "train",
        "interval",
        "--out",
        str(out),
        "--time-limit",
        "0.001",
        "--steps",
        "100000",
        "--batch",
        "64",
    ]
    assert main([*argv, "--no-progress"]) == 3
    assert "stopped at the time limit (0.001 s) after 250 of 100000 steps" in capsys.readouterr().err
    assert json.loads((out / "result.json").read_text())["converged"] is False


@pytest.mark.parametrize(
    ("given", "limit", "steps"),
    [
        ([], 300.0, None),  # the default: at most 5 minutes, and no step budget under them
        (["--steps", "500"], None, 500),  # an explicit step budget is never cut
        (["--time-limit", "20"], 20.0, None),  # the clock alone is the budget
        (["--time-limit", "0"], None, "default"),  # 0: the step budget alone (the solver's 6000)
        (["--steps", "500", "--time-limit", "20"], 20.0, 500),
    ],
)
def test_train_defaults_to_a_five_minute_limit_unless_steps_are_given(
    tmp_path: Path,
    solve_settings: Callable[[list[str]], dict[str, object]],
    given: list[str],
    limit: float | None,
    steps: int | str | None,
) -> None:
    seen = solve_settings(["train", "interval", "--out", str(tmp_path / "run"), "--no-progress", *given])
    assert seen.get("time_limit") == limit
    assert seen.get("steps", "default") == steps


def test_eval_samples_reach_the_solver(
    tmp_path: Path, solve_settings: Callable[[list[str]], dict[str, object]]
) -> None:
    argv = ["train", "interval", "--out", str(tmp_path / "run"), "--no-progress"]
    assert "eval_samples" not in solve_settings(argv)  # the solver's default, 200,000
    assert solve_settings([*argv, "--eval-samples", "20000"])["eval_samples"] == 20_000


def test_a_bad_eval_sample_count_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "interval", "--out", str(tmp_path / "bad"), "--eval-samples", "0"]) == 2
    err = capsys.readouterr().err
    assert "eval_samples must be a positive integer" in err and "Traceback" not in err


def test_a_resumed_run_keeps_its_limit_and_time_limit_zero_lifts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that the default 300 s would end is shown here with a tiny limit; ``--time-limit 0`` on resume lifts it."""
    out = tmp_path / "run"
    argv = ["train", "interval", "--out", str(out), "--batch", "64", "--time-limit", "0.001", "--no-progress"]
    argv += ["--eval-samples", "20000"]  # the limit is the point, not the verdict's precision
    assert main(argv) == 3
    err = capsys.readouterr().err  # --time-limit alone: no step budget, so no "of N steps"
    assert "stopped at the time limit (0.001 s) after 250 steps" in err
    assert f"give it more time: maxent-mdn train --resume {out}" in err
    assert json.loads((out / "result.json").read_text())["config"]["steps"] is None
    # lifting the limit of a run that has no step budget leaves no budget at all: refused, the run kept
    assert main(["train", "--resume", str(out), "--time-limit", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "steps=None (no step budget) needs a time_limit" in err and "Traceback" not in err
    # the exit code says whether 500 steps converged (with the tail layer they can); the limit is the point
    code = main(["train", "--resume", str(out), "--steps", "500", "--time-limit", "0", "--no-progress"])
    assert code in (0, 3)
    summary = json.loads((out / "result.json").read_text())
    assert summary["config"]["steps"] == 500 and summary["config"]["time_limit"] is None
    assert (out / "history.csv").read_text().splitlines()[-1].startswith("500,")  # trained on to the budget
    assert "time limit" not in (summary["why_not_converged"] or "")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], {}),
        (["--tails"], {"tails": True}),
        (["--no-tails"], {"tails": False}),
        (["--simplex-map", "additive-logistic"], {"simplex_map": "additive-logistic"}),
    ],
)
def test_model_flags_reach_the_solver(
    tmp_path: Path,
    solve_settings: Callable[[list[str]], dict[str, object]],
    given: list[str],
    expected: dict[str, object],
) -> None:
    seen = solve_settings(["train", "interval", "--out", str(tmp_path / "run"), "--no-progress", *given])
    assert {k: seen[k] for k in ("tails", "simplex_map") if k in seen} == expected


def test_files_written_before_the_tail_layer_still_resume_and_load(tmp_path: Path) -> None:
    """A checkpoint and model file without the settings added since are read as what they ran."""
    out = tmp_path / "run"
    argv = ["train", "dirichlet", "--out", str(out), "--steps", "250", "--batch", "64", "--no-progress"]
    argv += ["--eval-samples", "20000"]  # the files are the point, not the verdict's precision
    assert main([*argv, "--no-tails", "--simplex-map", "additive-logistic"]) in (0, 3)
    for name in ("checkpoint.pt", "model.pt"):
        saved = torch.load(out / name, weights_only=False)
        for key in ("tails", "warm_start", "simplex_map"):
            del saved["config"][key]
        torch.save(saved, out / name)
    flow, _ = load_model(out)
    names = [type(t).__name__ for t in flow.transforms]
    assert "Tails" not in names and names[-1] == "SimplexMap"
    assert main(["train", "--resume", str(out), "--steps", "500", "--no-progress"]) in (0, 3)
    config = json.loads((out / "result.json").read_text())["config"]
    assert config["tails"] is False and config["simplex_map"] == "additive-logistic"


def test_the_auto_base_is_recorded_as_the_base_it_picked_and_resumes(tmp_path: Path, run_dir: Path) -> None:
    """Default runs save the base "auto" resolved to, reload into it, and resume with it."""
    assert json.loads((run_dir / "result.json").read_text())["base"] == "gumbel-mog"  # 2 flow coordinates
    spec = tmp_path / "gaussian_6d.py"
    spec.write_text(
        "from maxent_mdn import Covariance, MaxEntProblem\n"
        "problem = MaxEntProblem(6, [Covariance([[float(i == j) for j in range(6)] for i in range(6)], "
        "mean=[0.0] * 6)], name='gaussian-6d')\n"
    )
    out = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(out), *SHORT]) == 3
    summary = json.loads((out / "result.json").read_text())
    assert summary["base"] == "gaussian" and summary["config"]["base"] == "gaussian"
    flow, _ = load_model(out)
    assert type(flow.base).__name__ == "StandardNormal"
    assert main(["train", "--resume", str(out), "--steps", "60", "--no-progress"]) == 3
    assert json.loads((out / "result.json").read_text())["config"]["base"] == "gaussian"
