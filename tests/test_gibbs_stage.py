"""The second stage of a solve: no penalty (c = 0), a reverse-KL fit to the Gibbs form, Newton steps of the multipliers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from loop_helpers import small_training

from maxent_mdn import Expectation, MaxEntProblem, Mean, Positive
from maxent_mdn.objective.lagrangian import AugmentedLagrangian
from maxent_mdn.training import solve
from maxent_mdn.training.loop import SolverState, after_inner_run

# N(0.3, 0.5^2) is the answer: eta* = (mu / s^2, -1 / (2 s^2)) for the rows (E x, E x^2)
MU, S = 0.3, 0.5
ETA_STAR = torch.tensor([MU / S**2, -0.5 / S**2], dtype=torch.float64)


def _problem() -> MaxEntProblem:
    second = Expectation(lambda x: x[..., 0] ** 2, MU**2 + S**2, name="m2")
    return MaxEntProblem(1, [Mean(MU, name="m1"), second], name="normal")


def test_without_the_penalty_the_loss_is_the_reverse_kl_to_the_gibbs_form_up_to_a_constant() -> None:
    """c = 0: loss = mean log q + lambda.(mean T - b), which for lambda = -eta* is KL(q || p*) - log Z(eta*) - eta*.b.

    Checked against the closed form on draws of q = N(0, 1): KL(N(0, 1) || N(0.3, 0.25)) = log(0.5) + (1 + 0.09)
    / 0.5 - 0.5 and log Z(eta*) - eta*.b = H(p*) = 0.5 log(2 pi e 0.25); 400,000 draws put the estimate's
    standard error near 0.004 (the sd of the per-draw loss is below 2.5).
    """
    problem = _problem()
    alm = AugmentedLagrangian(problem.targets, problem.relations, c0=16.0)
    alm.lam = -ETA_STAR.clone()
    alm.drop_penalty()
    torch.manual_seed(0)
    x = torch.randn(400_000, 1, dtype=torch.float64)
    log_q = torch.distributions.Normal(0.0, 1.0).log_prob(x[:, 0])
    loss, _ = alm.loss(problem.statistics(x), log_q)
    kl = np.log(S) + (1 + MU**2) / (2 * S**2) - 0.5
    entropy_star = 0.5 * np.log(2 * np.pi * np.e * S**2)
    assert abs(float(loss) - (kl - entropy_star)) < 5 * 0.004


def test_without_the_penalty_the_multipliers_take_the_full_newton_step_and_c_stays_zero() -> None:
    """The cap rho (0.5 here; 0.25 for a warm start) is for a flow that has not fit p_eta yet; the second stage
    starts after min_outer inner runs, and with the quarter step 10 power moments (seed 0) took 12 outer
    iterations to meet their constraints again and never passed twice in a row; with the full step, 2."""
    alm = AugmentedLagrangian(torch.tensor([1.0, 2.0]), ["==", "=="], c0=0.1, dual_step=0.5)
    alm.set_covariance(torch.tensor([[4.0, 0.0], [0.0, 1.0]]))
    alm.update_multipliers(torch.tensor([0.4, 0.2]))  # with the penalty: min(c, rho) = 0.1
    assert torch.allclose(alm.lam, torch.tensor([0.01, 0.02], dtype=torch.float64))
    alm.drop_penalty()
    alm.update_multipliers(torch.tensor([0.4, 0.2]))  # without: the full Newton step W g, W = Cov^-1
    assert torch.allclose(alm.lam, torch.tensor([0.11, 0.22], dtype=torch.float64))
    norms = np.ones(50)
    assert alm.update_penalty(norms, 2 * norms, np.random.default_rng(0)) is False  # no shrink, yet no growth
    assert alm.c == 0.0
    restored = AugmentedLagrangian(torch.tensor([1.0, 2.0]), ["==", "=="])
    restored.load_state_dict(alm.state_dict())
    assert restored.c == 0.0  # a checkpoint of the second stage resumes in it


@pytest.mark.parametrize("gibbs_stage", [True, False])
def test_the_solve_drops_the_penalty_after_min_outer_iterations_unless_switched_off(
    gibbs_stage: bool,
) -> None:
    run, state = small_training(_problem(), c0=4.0, patience=1, min_outer=2, gibbs_stage=gibbs_stage)
    state.outer = 1
    assert after_inner_run(run, state) is False
    assert not state.gibbs and run.alm.c >= 4.0  # before min_outer: the augmented Lagrangian as before
    state.outer = 2
    before = run.alm.lam.clone()
    assert after_inner_run(run, state) is False
    assert state.gibbs is gibbs_stage and SolverState.from_dict(state.as_dict()).gibbs is gibbs_stage
    assert (run.alm.c == 0.0) is gibbs_stage
    assert not torch.equal(run.alm.lam, before)  # the multipliers move in either stage


@pytest.mark.parametrize("gibbs_stage", [True, False])
def test_a_late_outer_iteration_starts_the_second_stage_before_min_outer(gibbs_stage: bool) -> None:
    """Late (the clock says so: past ``gibbs_time`` of the limit, past its floor, with room), the stage does not
    wait for ``min_outer``; the clock's floor is :func:`clock_starts_stage`'s (the next tests)."""
    run, state = small_training(_problem(), c0=4.0, patience=1, min_outer=9, gibbs_stage=gibbs_stage)
    state.outer = 3
    assert after_inner_run(run, state, late=False) is False
    assert not state.gibbs and run.alm.c >= 4.0
    assert after_inner_run(run, state, late=True) is False  # late: min_outer is not waited for
    assert state.gibbs is gibbs_stage and (run.alm.c == 0.0) is gibbs_stage


@pytest.mark.parametrize(("time_limit", "last_with_penalty"), [(None, 600), (1000.0, 200)])
def test_under_a_time_limit_the_stage_starts_once_gibbs_time_of_it_has_passed(
    time_limit: float | None, last_with_penalty: int
) -> None:
    """``gibbs_time`` of the limit, a fraction, counts seconds where ``min_outer`` counts outer iterations: with
    a tiny fraction every outer iteration ends late and the penalty is gone after ``min_outer // 3`` of them (2 x
    100 steps); without a limit the stage waits for ``min_outer`` (6 x 100 steps), as before."""
    problem = MaxEntProblem(1, [Mean(2.0)], support=Positive(), name="exp")
    small = {"steps": 800, "inner_steps": 100, "min_outer": 6, "test_batches": 5, "test_batch_size": 500}
    small.update(eval_samples=2_000, trace_samples=0, stop_samples=0, progress=False, gibbs_stage=True)
    result = solve(problem, time_limit=time_limit, gibbs_time=1e-6, **small)
    history = result.history.dropna(subset=["c"])
    assert (history.loc[history["step"] <= last_with_penalty, "c"] > 0).all()
    assert (history.loc[history["step"] > last_with_penalty, "c"] == 0).all()
    assert result.config.gibbs_time == 1e-6


def test_the_clock_starts_the_stage_only_past_gibbs_time_with_room_for_three_more_outer_iterations() -> None:
    from maxent_mdn.training import SolverConfig
    from maxent_mdn.training.solver import STAGE_ROOM, clock_starts_stage

    # gibbs_time 0.5: from 150 s; min_outer 3 puts the floor (1) out of the way
    cfg = SolverConfig(time_limit=300.0, min_outer=3)
    assert STAGE_ROOM == 3
    assert not clock_starts_stage(SolverConfig(min_outer=3), 1e9, 100)  # no limit: min_outer alone
    assert not clock_starts_stage(cfg, 149.9, 1)
    assert clock_starts_stage(cfg, 150.0, 6)  # 25 s per outer iteration, 150 s left: room for 6
    assert clock_starts_stage(cfg, 150.0, 3)  # 50 s each: exactly 3 fit
    assert not clock_starts_stage(cfg, 150.0, 2)  # 75 s each: 225 s needed, 150 s left
    assert not clock_starts_stage(cfg, 250.0, 10)  # 25 s each, 50 s left
    assert not clock_starts_stage(cfg, 200.0, 0)
    assert not clock_starts_stage(
        SolverConfig(time_limit=300.0, gibbs_time=1.0), 300.0, 1000
    )  # never by the clock


def test_the_clock_waits_for_a_third_of_min_outer_counted_over_the_whole_solve() -> None:
    """The floor: a flow two outer iterations in is too far from p_eta for the full Newton step (autoregressive
    layers at D = 20 got the stage there and ended at KL 0.52). A resumed solve counts its checkpoint's outer
    iterations toward the floor, while its pace is this call's own."""
    from maxent_mdn.training import SolverConfig
    from maxent_mdn.training.solver import clock_starts_stage

    cfg = SolverConfig(time_limit=300.0, min_outer=9)  # floor 3; 6 s an outer iteration: room
    assert not clock_starts_stage(cfg, 150.0 - 1e-9, 25)  # the fraction first
    assert not clock_starts_stage(cfg, 150.0, 25, outer=2)  # past it, with room, below the floor
    assert clock_starts_stage(cfg, 150.0, 25, outer=3)
    # outer defaults to done; the default min_outer 12 puts the floor at 4, where exactly 3 more fit
    assert not clock_starts_stage(SolverConfig(time_limit=300.0), 150.0, 3)
    assert clock_starts_stage(SolverConfig(time_limit=300.0), 150.0, 3, outer=4)
    # resumed after 3: the floor counts those, the room this call's own pace (50 s, then 75 s an outer iteration)
    assert clock_starts_stage(cfg, 150.0, 3, outer=6)
    assert not clock_starts_stage(cfg, 150.0, 2, outer=5)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5])
def test_gibbs_time_outside_zero_one_is_refused_by_name(bad: float) -> None:
    from maxent_mdn.training import SolverConfig

    with pytest.raises(ValueError, match=r"gibbs_time must be in \(0, 1\]"):
        SolverConfig(gibbs_time=bad).validate()


def test_a_solve_runs_its_second_stage_in_the_history_and_still_meets_its_constraints() -> None:
    """Exponential with mean 2 (eta* = -0.5): c is 0 from outer iteration ``min_outer`` on, and the flow ends
    within 2% of the mean and 0.02 of the multiplier (a short run: 1,200 steps, 4 of them without the penalty)."""
    problem = MaxEntProblem(1, [Mean(2.0)], support=Positive(), name="exp")
    small = {"steps": 1200, "inner_steps": 150, "min_outer": 4, "test_batches": 20, "test_batch_size": 1000}
    result = solve(
        problem,
        progress=False,
        eval_samples=20_000,
        trace_samples=0,
        stop_samples=0,
        gibbs_stage=True,
        **small,
    )
    history = result.history.dropna(subset=["c"])
    assert (history.loc[history["step"] > 600, "c"] == 0).all() and (
        history.loc[history["step"] <= 600, "c"] > 0
    ).all()
    assert abs(result.constraints["value"].iloc[0] - 2.0) < 0.04, result.table()
    assert abs(float(result.lagrangian["lam"][0]) - 0.5) < 0.02, result.table()


def test_the_stage_is_on_by_default_for_a_built_in_flow_and_off_for_a_model_brought_in() -> None:
    """``gibbs_stage=None`` (the default) resolves per run, and the result records what ran: on for the flow the
    settings build, off for ``model=`` (zuko's NSF lagged p_eta there: 1 of 3 seeds converged with the stage, 2
    without); an explicit value holds either way."""
    from maxent_mdn import make_flow

    problem = MaxEntProblem(1, [Mean(2.0)], support=Positive(), name="exp")
    tiny = {"steps": 20, "inner_steps": 10, "test_batches": 5, "eval_samples": 500, "progress": False}
    assert solve(problem, **tiny).config.gibbs_stage is True
    assert solve(problem, model=make_flow(1, support=Positive()), **tiny).config.gibbs_stage is False
    brought = solve(problem, model=make_flow(1, support=Positive()), gibbs_stage=True, **tiny)
    assert brought.config.gibbs_stage is True
    assert solve(problem, gibbs_stage=False, **tiny).config.gibbs_stage is False
    with pytest.raises(TypeError, match="gibbs_stage must be True, False or None"):
        solve(problem, gibbs_stage="yes", **tiny)


def test_a_file_written_before_gibbs_time_resumes_with_the_stage_by_min_outer_alone() -> None:
    from maxent_mdn.training.config import saved_settings

    assert saved_settings({"steps": 10})["gibbs_time"] == 1.0  # as it ran: no clock
    assert saved_settings({"gibbs_time": 0.5})["gibbs_time"] == 0.5
