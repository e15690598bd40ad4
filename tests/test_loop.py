"""The solver's loop parts, each alone: state, learning rate, rollback, the update after an inner run."""

from __future__ import annotations

import ast
import copy
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from loop_helpers import small_training

from maxent_mdn import Expectation, MaxEntProblem, Mean, Positive, SolverConfig
from maxent_mdn.training.loop import (
    SolverState,
    after_inner_run,
    divergence_limit,
    inner_run,
    keep_best,
    learning_rate,
    outer_iteration,
    roll_back,
)

TRAINING = Path(__file__).resolve().parents[1] / "maxent_mdn" / "training"


def test_state_round_trips_through_a_checkpoint_dict():
    state = SolverState(step=30, outer=3, passes=1, lr_scale=0.5, rollbacks=1, history=[{"step": 5.0}])
    saved = {**state.as_dict(), "flow": {}, "seconds": 1.0}
    assert SolverState.from_dict(saved) == state


def test_learning_rate_decays_per_outer_iteration_down_to_the_floor_and_keeps_the_rollback_scale():
    cfg = SolverConfig(lr=1e-2, lr_decay=0.5, lr_min=2e-3)
    rates = [learning_rate(cfg, SolverState(outer=k, lr_scale=0.5)) for k in range(4)]
    assert rates == pytest.approx([5e-3, 2.5e-3, 1.25e-3, 1e-3])


def test_an_inner_run_appends_history_but_leaves_the_counters():
    run, state = small_training(MaxEntProblem(1, [Mean(0.0)]))
    before = copy.deepcopy(run.flow.state_dict())
    inner_run(run, state, lr=1e-2)
    assert (state.step, state.outer) == (0, 0)
    assert [row["step"] for row in state.history] == [1, 5, 10, 15, 20]
    assert any(not torch.equal(before[k], v) for k, v in run.flow.state_dict().items())


def test_a_fault_rolls_back_the_flow_and_halves_the_rate_until_the_limit():
    calls = {"n": 0}

    def flaky(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return x[..., 0] * (float("nan") if calls["n"] == 7 else 1.0)

    run, state = small_training(MaxEntProblem(1, [Expectation(flaky, 0.0, name="flaky")]), max_rollbacks=1)
    before = copy.deepcopy(run.flow.state_dict())
    with pytest.warns(UserWarning, match="step 6: constraint statistic flaky.* rolled back to step 0"):
        assert outer_iteration(run, state) is False
    assert all(torch.equal(before[k], v) for k, v in run.flow.state_dict().items())
    assert (state.step, state.rollbacks, state.lr_scale, state.history) == (0, 1, 0.5, [])
    assert outer_iteration(run, state) is True and state.step == 20 and state.outer == 1
    with pytest.raises(FloatingPointError, match="stopped after 1 rollbacks"):
        roll_back(run, state, before, FloatingPointError("step 21: the flow's log-density went non-finite"))


def test_the_divergence_limit_scales_the_last_tests_largest_batch_to_the_training_batch():
    run, state = small_training(MaxEntProblem(1, [Mean(0.0)]))  # batch 64, test batches of 2000
    state.norms_before = np.array([0.1, 0.3, 0.2])
    assert divergence_limit(run, state) == pytest.approx(10 * 0.3 * np.sqrt(2000 / 64))
    state.norms_before = np.zeros(3)  # a perfect last test: the noise of one whitened row in 64 draws
    assert divergence_limit(run, state) == pytest.approx(10 * np.sqrt(1 / 64))
    state.norms_before = None
    assert divergence_limit(run, state) == float("inf")


def test_a_diverging_inner_run_is_rolled_back_before_the_multipliers_follow_it():
    """The last test saw the flow on target (norms 0); a batch 5 standard deviations off is 40x the limit's
    noise level, so the first step raises and the flow returns to the snapshot at half the rate."""
    run, state = small_training(MaxEntProblem(1, [Mean(5.0, name="m")]))
    state.norms_before = np.zeros(5)
    before = copy.deepcopy(run.flow.state_dict())
    with pytest.warns(
        UserWarning, match="step 0: the constraint violations diverged .* rolled back to step 0"
    ):
        assert outer_iteration(run, state) is False
    assert all(torch.equal(before[k], v) for k, v in run.flow.state_dict().items())
    assert (state.step, state.rollbacks, state.lr_scale) == (0, 1, 0.5)
    assert float(run.alm.lam[0]) == 0.0  # the multipliers never saw the diverged flow
    state.norms_before = run.alm.norms(torch.full((5, 1), -5.0))  # the test agrees: the flow is that far off
    assert outer_iteration(run, state) is True


def test_after_an_inner_run_the_multipliers_move_unless_the_test_stops_the_solve():
    problem = MaxEntProblem(1, [Mean(3.0)])  # the untrained flow's mean is far from 3: the test fails
    run, state = small_training(problem, patience=1, min_outer=1)
    state.outer = 1
    assert after_inner_run(run, state) is False
    assert state.passes == 0 and float(run.alm.lam[0]) != 0.0
    assert state.history == [{"step": 0, "outer": 0, "test_passed": 0.0, "test_passes": 0.0}]

    run, state = small_training(
        MaxEntProblem(1, [Mean(0.0, name="m")]), patience=1, min_outer=1, test_batches=20
    )
    with torch.no_grad():  # a flow with mean exactly 0: the test passes
        for p in run.flow.parameters():
            p.zero_()
    state.outer = 1
    traced = []
    assert after_inner_run(run, state, trace=lambda *a: traced.append(1) or {"gap": 0.0}) is True
    assert state.passes == 1 and float(run.alm.lam[0]) == 0.0 and traced == [1]
    assert state.history == [{"step": 0, "outer": 0, "gap": 0.0, "test_passed": 1.0, "test_passes": 1.0}]


@pytest.mark.parametrize(("verdict", "stops"), [(0.0, False), (1.0, True)])
def test_a_stop_check_that_fails_keeps_a_passing_solve_training_and_one_that_passes_stops_it(
    verdict: float, stops: bool
) -> None:
    run, state = small_training(
        MaxEntProblem(1, [Mean(0.0, name="m")]), patience=1, min_outer=1, test_batches=20
    )
    with torch.no_grad():  # a flow with mean exactly 0: the constraint test passes
        for p in run.flow.parameters():
            p.zero_()
    state.outer = 1
    checked = []
    check = {"stop_gap": 0.03, "stop_kl_upper": 0.05, "stop_rows_met": 1.0, "stop": verdict}
    assert after_inner_run(run, state, stop_check=lambda *a: checked.append(1) or check) is stops
    assert state.passes == 1 and checked == [1]
    assert state.history == [{"step": 0, "outer": 0, "test_passed": 1.0, "test_passes": 1.0, **check}]


def test_a_solve_that_trains_on_past_passing_states_returns_to_the_certified_best() -> None:
    run, state = small_training(
        MaxEntProblem(1, [Mean(0.0, name="m")]), patience=1, min_outer=1, test_batches=20
    )
    with torch.no_grad():
        for p in run.flow.parameters():
            p.zero_()
    zero = copy.deepcopy(run.flow.state_dict())
    for step, kl_upper in ((250, 0.05), (500, 0.03), (750, 0.04)):  # all pass the test, none may stop
        state.outer, state.step = step // 250, step
        check = {"stop_gap": 0.0, "stop_kl_upper": kl_upper, "stop_rows_met": 1.0, "stop": 0.0}
        assert after_inner_run(run, state, stop_check=lambda *a, c=check: c) is False
    assert state.best["step"] == 500 and state.best["kl_upper"] == 0.03
    kept_lam = state.best["alm"]["lam"].clone()
    with torch.no_grad():  # training went on to a state that fails the test
        for p in run.flow.parameters():
            p.add_(1.0)
    run.alm.lam = kept_lam + 1.0
    state.step, state.passes = 1000, 0
    assert keep_best(run, state) == 500
    assert state.passes == run.cfg.patience
    for name, value in run.flow.state_dict().items():
        assert torch.equal(value, zero[name]), name
    assert torch.equal(run.alm.lam, kept_lam)  # the multipliers of step 500
    state.best["step"] = state.step
    assert keep_best(run, state) is None  # the final state is the best: nothing to return to


def test_a_state_whose_rows_were_off_on_the_check_ranks_after_every_state_whose_rows_were_met() -> None:
    """The stop check refuses a state whose table would flag a row whatever its certificate says; returning
    to it would end the solve on that row, so it is the certified best only while no other state is."""
    run, state = small_training(
        MaxEntProblem(1, [Mean(0.0, name="m")]), patience=1, min_outer=1, test_batches=20
    )
    with torch.no_grad():
        for p in run.flow.parameters():
            p.zero_()
    for step, kl_upper, rows in ((250, 0.01, 0.0), (500, 0.05, 1.0), (750, 0.001, 0.0), (1000, 0.04, 1.0)):
        state.outer, state.step = step // 250, step
        check = {"stop_gap": 0.0, "stop_kl_upper": kl_upper, "stop_rows_met": rows, "stop": 0.0}
        assert after_inner_run(run, state, stop_check=lambda *a, c=check: c) is False
        assert state.best["step"] == {250: 250, 500: 500, 750: 500, 1000: 1000}[step]


def test_a_flow_that_fails_the_constraint_test_is_not_checked_for_a_stop() -> None:
    run, state = small_training(MaxEntProblem(1, [Mean(3.0)]), patience=1, min_outer=1)
    state.outer = 1
    assert after_inner_run(run, state, stop_check=lambda *a: pytest.fail("checked a failing flow")) is False


def test_every_function_of_the_training_loop_is_at_most_50_lines():
    long = []
    for path in TRAINING.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body[1:] if ast.get_docstring(node) else node.body  # the code, not the docstring
                lines = body[-1].end_lineno - body[0].lineno + 1
                if path.name in {"solver.py", "loop.py"} and lines > 50:
                    long.append(f"{path.name}:{node.name} ({lines} lines)")
    assert not long


def test_a_time_limit_stops_training_when_no_outer_iteration_fits_and_resume_starts_the_clock_anew(
    tmp_path: Path,
) -> None:
    from maxent_mdn.training import solve

    problem = MaxEntProblem(1, [Mean([0.5])], support=Positive(), name="time-limit")
    small = {"inner_steps": 10, "test_batches": 4, "test_batch_size": 64, "eval_samples": 500, "batch": 64}
    small.update(transform="coupling", layers=1, trace_samples=0, log_every=10)
    ckpt = tmp_path / "checkpoint.pt"
    start = time.perf_counter()
    result = solve(problem, steps=100_000, time_limit=1e-9, progress=False, checkpoint=ckpt, **small)
    assert time.perf_counter() - start < 60
    assert result.history["step"].max() == 10  # one outer iteration, then the limit (no room for another)
    assert not result.converged and "stopped at the time limit (1e-09 s) after 10 of 100000 steps" in (
        result.why_not_converged
    )
    again = solve(
        problem, steps=100_000, time_limit=1e-9, progress=False, checkpoint=ckpt, resume=True, **small
    )
    assert again.history["step"].max() == 20  # the resumed call gets its own (tiny) allowance
    with pytest.raises(ValueError, match="time_limit must be a positive"):
        SolverConfig(time_limit=-1.0).validate()


def test_without_a_step_budget_the_clock_alone_ends_the_run_and_one_of_them_is_required() -> None:
    from maxent_mdn.training import solve

    problem = MaxEntProblem(1, [Mean([0.5])], support=Positive(), name="no-budget")
    small = {"inner_steps": 10, "test_batches": 4, "test_batch_size": 64, "eval_samples": 500, "batch": 64}
    small.update(transform="coupling", layers=1, trace_samples=0, log_every=10, min_outer=1000)
    result = solve(problem, steps=None, time_limit=0.5, progress=False, **small)
    last = int(result.history["step"].max())
    assert last > 0 and last % 10 == 0  # whole outer iterations, however many 0.5 s allowed
    assert result.why_not_converged.endswith(f"stopped at the time limit (0.5 s) after {last} steps")
    assert result.summary()["config"]["steps"] is None
    with pytest.raises(ValueError, match=r"steps=None \(no step budget\) needs a time_limit"):
        SolverConfig(steps=None).validate()
    with pytest.raises(ValueError, match="steps must be a positive"):
        SolverConfig(steps=0, time_limit=1.0).validate()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"tails": "yes"}, "tails must be True or False"),
        ({"warm_start": 1}, "warm_start must be True or False"),
        ({"simplex_map": "softmax"}, "simplex_map"),
    ],
)
def test_model_switches_are_checked(bad: dict[str, object], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        SolverConfig(**bad).validate()


@pytest.mark.parametrize("gradients", [False, True])
def test_the_finiteness_check_names_the_parameter_that_went_non_finite(gradients: bool) -> None:
    from maxent_mdn.training.loop import _check_tensors

    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    net(torch.ones(4, 2)).sum().backward()
    _check_tensors(net, 7, gradients=gradients)  # all finite: no error
    with torch.no_grad():
        (net[1].bias.grad if gradients else net[1].bias)[0] = math.nan
    what = "the gradient of 1.bias" if gradients else "parameter 1.bias"
    with pytest.raises(FloatingPointError, match=f"step 7: {what} went non-finite"):
        _check_tensors(net, 7, gradients=gradients)
    net[0].weight.grad = None  # a parameter without a gradient is skipped
    with pytest.raises(FloatingPointError, match=f"step 7: {what} went non-finite"):
        _check_tensors(net, 7, gradients=gradients)
