"""Restarts: several seeds, every run kept on disk, the certified best chosen."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from maxent_mdn.cli import main
from maxent_mdn.training.restarts import rank, solve_restarts

SPEC = """
from maxent_mdn import MaxEntProblem, Mean, Positive

problem = MaxEntProblem(1, [Mean(1.0)], support=Positive(), name="exp")
"""
FAST = {"steps": 40, "inner_steps": 20, "test_batches": 5, "eval_samples": 500, "batch": 64}


def _run(met: bool, kl_upper: float | None, entropy: float) -> SimpleNamespace:
    cert = None if kl_upper is None else SimpleNamespace(certificate=SimpleNamespace(kl_upper=kl_upper))
    return SimpleNamespace(constraints_met=met, certificate=cert, entropy=entropy)


def test_rank_prefers_met_constraints_then_the_smallest_gap_bound_then_entropy() -> None:
    runs = {
        "missed, tiny gap": _run(False, 0.001, 9.0),
        "met, gap 0.05": _run(True, 0.05, 1.0),
        "met, gap 0.02": _run(True, 0.02, 0.5),
        "met, no bound": _run(True, math.nan, 5.0),
        "met, no certificate, high H": _run(True, None, 2.0),
        "met, no certificate, low H": _run(True, None, 1.0),
    }
    order = sorted(runs, key=lambda k: rank(runs[k]))  # type: ignore[arg-type]
    assert order == [
        "met, gap 0.02",
        "met, gap 0.05",
        "met, no bound",
        "met, no certificate, high H",
        "met, no certificate, low H",
        "missed, tiny gap",
    ]


def test_restarts_keep_every_run_and_choose_by_the_certificate(tmp_path: Path) -> None:
    spec = tmp_path / "exp.py"
    spec.write_text(SPEC)
    best, table = solve_restarts(spec, 3, jobs=2, seed=5, out=tmp_path / "out", progress=False, **FAST)
    assert list(table["seed"]) == [5, 6, 7] and table["chosen"].sum() == 1
    chosen = table[table["chosen"]].iloc[0]
    assert best.config.seed == chosen["seed"] and best.reference is not None
    assert best.flow.sample((10,)).shape == (10, 1)
    keys = sorted(
        zip(~table["constraints_met"], table["kl_upper"].fillna(math.inf), -table["entropy"], strict=True)
    )
    assert keys[0] == (not chosen["constraints_met"], chosen["kl_upper"], -chosen["entropy"])
    for seed in (5, 6, 7):
        assert (tmp_path / "out" / "restarts" / f"seed-{seed}" / "result.json").is_file()


def test_train_with_restarts_writes_the_best_run_and_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec = tmp_path / "exp.py"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    argv = ["train", str(spec), "--restarts", "2", "--jobs", "2", "--steps", "40", "--out", str(out)]
    # the table and the choice are the point, not the verdict's precision
    code = main([*argv, "--eval-samples", "20000"])
    assert code in (0, 3)
    table = pd.read_csv(out / "restarts.csv")
    assert list(table["seed"]) == [0, 1] and (out / "result.json").is_file()
    assert "chose seed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--restarts", "0"], "--restarts: expected a positive integer"),
        (["--restarts", "2", "--distributed"], "--restarts does not combine"),
        (["--jobs", "-1"], "--jobs: expected a positive integer"),
    ],
)
def test_bad_restart_options_get_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    spec = tmp_path / "exp.py"
    spec.write_text(SPEC)
    try:
        code = main(["train", str(spec), "--out", str(tmp_path / "o"), *argv])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
