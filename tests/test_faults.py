"""Faults: NaN rollback, exact resume from checkpoints, corrupt checkpoints, interrupted CLI runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from maxent_mdn import Expectation, MaxEntProblem, Mean, Positive
from maxent_mdn.cli import main
from maxent_mdn.training import solve
from maxent_mdn.training.checkpoint import CheckpointError, load_checkpoint

FAST = {
    "inner_steps": 10,
    "test_batches": 5,
    "test_batch_size": 200,
    "eval_samples": 500,
    "batch": 64,
    "log_every": 5,
}
FAST.update(transform="coupling", layers=2, hidden=8, components=2)


class Flaky:
    """A statistic that returns NaN on chosen calls (or raises KeyboardInterrupt), else ``x``."""

    def __init__(self, nan_calls: set[int] = frozenset(), interrupt_at: int | None = None) -> None:
        self.calls, self.nan_calls, self.interrupt_at = 0, set(nan_calls), interrupt_at

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        out = x[..., 0]
        return out * float("nan") if self.calls in self.nan_calls else out


def _problem(fn: Flaky) -> MaxEntProblem:
    return MaxEntProblem(1, [Expectation(fn, 2.0, name="mean")], Positive(), name="flaky")


def test_a_nan_rolls_back_halves_the_lr_and_training_goes_on() -> None:
    fn = Flaky(nan_calls={31})  # call 1: the statistics' pre-flight; 31 is inside an inner run
    with pytest.warns(UserWarning, match=r"constraint statistic mean went non-finite: rolled back"):
        result = solve(_problem(fn), steps=60, progress=False, reference=False, seed=0, **FAST)
    assert result.history["step"].max() == 60
    lrs = result.history.drop_duplicates("outer")["lr"].to_numpy()
    assert lrs[2] == pytest.approx(0.5 * 2e-3 * 0.85**2)  # the rolled-back inner run restarted at half the lr


def test_persistent_nans_stop_with_a_message_naming_the_term() -> None:
    fn = Flaky(nan_calls=set(range(7, 10_000)))
    with (
        pytest.warns(UserWarning),
        pytest.raises(
            FloatingPointError, match=r"constraint statistic mean went non-finite; stopped after 2"
        ),
    ):
        solve(_problem(fn), steps=60, progress=False, reference=False, max_rollbacks=2, **FAST)


def test_resume_after_an_interrupt_is_bit_identical(tmp_path: Path) -> None:
    settings = dict(FAST, steps=80, seed=3)
    straight = solve(
        _problem(Flaky()), progress=False, reference=False, checkpoint=tmp_path / "a.pt", **settings
    )
    ckpt = tmp_path / "b.pt"
    with pytest.raises(KeyboardInterrupt):  # dies in the middle of the fifth inner run
        solve(
            # 1: the pre-flight, 5: the first test; per outer iteration 10 steps, 5 test batches, 3 for the trace
            # (the polish start, the polish, the bound)
            _problem(Flaky(interrupt_at=1 + 5 + 4 * (10 + 5 + 3) + 7)),
            progress=False,
            reference=False,
            checkpoint=ckpt,
            **settings,
        )
    assert load_checkpoint(ckpt)["step"] == 40
    resumed = solve(
        _problem(Flaky()), progress=False, reference=False, checkpoint=ckpt, resume=True, **settings
    )
    for (name, a), b in zip(
        straight.flow.state_dict().items(), resumed.flow.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert straight.lagrangian["c"] == resumed.lagrangian["c"]
    assert torch.equal(straight.lagrangian["lam"], resumed.lagrangian["lam"])
    assert straight.history.equals(resumed.history.assign(seconds=straight.history["seconds"]))


def test_checkpoint_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04 not a pickle")
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_checkpoint(bad)
    torch.save({"format": "other"}, bad)
    with pytest.raises(CheckpointError, match="not a maxent-mdn checkpoint"):
        load_checkpoint(bad)
    ckpt = tmp_path / "c.pt"
    problem = MaxEntProblem(1, [Mean(2.0)], Positive(), name="exp")
    solve(problem, steps=20, progress=False, reference=False, checkpoint=ckpt, **FAST)
    with pytest.raises(CheckpointError, match=r"other settings \(lr: 0.002 -> 0.01\)"):
        solve(
            problem, steps=40, lr=0.01, progress=False, reference=False, checkpoint=ckpt, resume=True, **FAST
        )
    with pytest.raises(CheckpointError, match="is for problem 'exp', not 'other'"):
        load_checkpoint(ckpt, problem_name="other")


SPEC = "from maxent_mdn import *\nproblem = MaxEntProblem(1, [Mean(2.0)], Positive(), name='exp')\n"


def test_cli_resume_continues_and_refuses_changed_specs(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec = tmp_path / "spec.py"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    args = [
        "train",
        str(spec),
        "--steps",
        "250",
        "--out",
        str(out),
        "--no-progress",
        "--transform",
        "coupling",
        "--eval-samples",  # resume is the point, not the verdict's precision
        "20000",
    ]
    assert main(args) in (0, 3)
    first = json.loads((out / "result.json").read_text())
    assert main(["train", "--resume", str(out), "--steps", "500", "--no-progress"]) in (0, 3)
    assert json.loads((out / "result.json").read_text())["config"]["steps"] == 500
    assert first["config"]["steps"] == 250
    assert main(["train", "--resume", str(out), "--lr", "0.1"]) == 2
    assert "only --steps may change" in capsys.readouterr().err
    spec.write_text(SPEC.replace("2.0", "3.0"))
    assert main(["train", "--resume", str(out), "--steps", "1000"]) == 2
    assert re.search(r"spec .* changed since the checkpoint", capsys.readouterr().err)
    (out / "checkpoint.pt").write_bytes(b"torn")
    assert main(["train", "--resume", str(out)]) == 2
    assert "corrupt or unreadable" in capsys.readouterr().err
