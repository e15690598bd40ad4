r"""``solve``: train a flow to the maximum-entropy distribution of a problem (MEFN's algorithm)."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..model import RAD_BASES, MaxEntModel
from ..objective.lagrangian import AugmentedLagrangian
from ..problem.feasibility import check_feasible
from ..problem.preflight import check_statistics
from ..problem.spec import MaxEntProblem
from ..reference import Reference, reference_for
from .averaging import TailAverage
from .checkpoint import load_checkpoint, save_checkpoint, spec_digest
from .config import SolverConfig
from .distributed import World
from .evaluate import evaluate
from .loop import (
    SolverState,
    Training,
    after_inner_run,
    forked_rng,
    keep_best,
    outer_iteration,
    test_violations,
)
from .progress import Progress
from .result import Result
from .verdict import certified_stop, dual_trace, final_certificate, rows_off, why_not_converged
from .warm_start import grid_multipliers

__all__ = ["STAGE_ROOM", "Result", "SolverConfig", "clock_starts_stage", "solve", "why_not_converged"]


def _configure(
    settings: dict[str, object], resume: bool, checkpoint: str | Path | None, world: World | None
) -> tuple[SolverConfig, World]:
    """The validated settings and the process group, or a ``ValueError`` naming what cannot work."""
    unknown = set(settings) - {f.name for f in dataclasses.fields(SolverConfig)}
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; see SolverConfig")
    cfg = SolverConfig(**settings).validate()  # type: ignore[arg-type]
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path to resume from")
    world = world if world is not None else World(use_process_group=False)  # opt-in only
    if world.distributed:
        if cfg.base in RAD_BASES:
            raise ValueError(
                f"data-parallel training supports the gaussian, gumbel-mog and exact-mog bases, not {cfg.base}"
            )
        if resume:
            raise ValueError("resuming a data-parallel solve is not supported; resume it in one process")
        if cfg.estimator == "loo":
            raise ValueError(
                "the leave-one-out estimator is not available in data-parallel training; use nested"
            )
        world.local(cfg.batch, "batch")
    return cfg, world


def _build_flow(problem: MaxEntProblem, cfg: SolverConfig, model: MaxEntModel | None) -> MaxEntModel:
    """The untrained flow (``model``, else built from ``cfg``), after :func:`check_statistics` on 256 of its samples."""
    if model is None:
        flow = cfg.build_flow_for(problem)
    elif not isinstance(model, MaxEntModel):
        raise TypeError(
            f"model must implement MaxEntModel (see maxent_mdn.model.contract), got {type(model).__name__}"
        )
    elif tuple(model.event_shape) != (problem.dim,):
        raise ValueError(
            f"model draws events of shape {tuple(model.event_shape)}; the problem needs ({problem.dim},)"
        )
    else:
        flow = model.to(cfg.device) if isinstance(model, torch.nn.Module) else model
    with forked_rng(cfg.device), torch.no_grad():  # leaves the training streams as they were
        samples = flow.rsample((256,))
    outside = 0 if model is None else int((~problem.support.contains(samples)).sum())
    if outside:
        raise ValueError(
            f"{outside} of 256 of the model's draws lie outside the problem's support {problem.support}"
        )
    check_statistics(problem, samples)  # numpy calls, detached or step statistics: exit 2 now, not at step 1
    return flow


def _start(
    flow: MaxEntModel,
    problem: MaxEntProblem,
    alm: AugmentedLagrangian,
    cfg: SolverConfig,
    world: World,
    rng: np.random.Generator,
    checkpoint: str | Path | None,
) -> tuple[SolverState, float]:
    """The state to start from and the seconds already spent: a checkpoint's (all RNGs restored), or a first test."""
    if checkpoint is not None:
        saved = load_checkpoint(checkpoint, cfg, problem.name)
        flow.load_state_dict(saved["flow"])
        alm.load_state_dict(saved["alm"])
        torch.set_rng_state(saved["rng_torch"])
        rng.bit_generator.state = saved["rng_numpy"]
        return SolverState.from_dict(saved), saved["seconds"]
    g_before, cov = test_violations(flow, problem, alm, cfg, world)
    alm.set_covariance(cov)
    return SolverState(norms_before=alm.norms(g_before)), 0.0


def _lagrangian(
    problem: MaxEntProblem, cfg: SolverConfig, warm: bool, ref: Reference | None
) -> AugmentedLagrangian:
    """The augmented Lagrangian, its multipliers at the grid dual's answer where one exists (``cfg.warm_start``;
    ``ref``, when it is that grid answer, is not solved again)."""
    alm = AugmentedLagrangian(
        problem.targets, problem.relations, cfg.c0, cfg.beta, cfg.gamma, cfg.c_max, cfg.dual_step
    )
    if warm and cfg.warm_start and (lam := grid_multipliers(problem, ref)) is not None:
        alm.lam = lam  # -eta*
        alm.dual_step = min(cfg.dual_step, cfg.warm_dual_step)
    return alm


def _save(
    run: Training, state: SolverState, checkpoint: str | Path, spec: str | Path | None, sha: str | None
) -> None:
    """Write the checkpoint of an outer-iteration boundary (atomically; see :mod:`.checkpoint`)."""
    save_checkpoint(
        checkpoint,
        {
            **state.as_dict(),
            "problem": run.problem.name,
            "spec": spec,
            "spec_sha256": sha,
            "config": dataclasses.asdict(run.cfg),
            "flow": run.flow.state_dict(),
            "alm": run.alm.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_numpy": run.rng.bit_generator.state,
            "seconds": time.perf_counter() - run.start,
        },
    )


#: outer iterations, at this call's mean pace, that must fit in the time left for the clock to start the second
#: stage: Dirichlet D = 20 seed 2, on a machine where it got the stage with about two left, ended 6.4% off a target
STAGE_ROOM = 3


def clock_starts_stage(cfg: SolverConfig, elapsed: float, done: int, outer: int | None = None) -> bool:
    """Whether the clock starts the second stage after an outer iteration: past ``gibbs_time`` of ``time_limit``,
    at least ``min_outer // 3`` outer iterations in (the floor), and with time left for :data:`STAGE_ROOM` more at
    this call's mean pace (the room).

    Args:
        cfg: the settings (``time_limit``, ``gibbs_time``, ``min_outer``).
        elapsed: seconds since this call of :func:`solve` started (a resume's clock starts anew).
        done: outer iterations this call has completed, which set its pace.
        outer: outer iterations of the whole solve, a resumed checkpoint's included (default ``done``).

    The stage's other start, ``min_outer`` outer iterations whatever the clock, is
    :func:`~maxent_mdn.training.loop.after_inner_run`'s.

    Example:
        >>> cfg = SolverConfig(time_limit=300.0)  # from 150 s, with min_outer = 12: from the 4th outer iteration
        >>> clock_starts_stage(cfg, 100.0, 4), clock_starts_stage(cfg, 160.0, 5), clock_starts_stage(cfg, 200.0, 4)
        (False, True, False)
        >>> clock_starts_stage(cfg, 150.0, 3), clock_starts_stage(cfg, 150.0, 3, outer=4)  # the floor, over a resume
        (False, True)
    """
    outer = done if outer is None else outer
    if cfg.time_limit is None or done < 1 or outer < cfg.min_outer // 3:
        return False
    left = cfg.time_limit - elapsed
    return elapsed >= cfg.gibbs_time * cfg.time_limit and left >= STAGE_ROOM * elapsed / done


def _stage_clock(run_outer: int, start: float) -> Callable[[Training, SolverState], bool]:
    """:func:`clock_starts_stage` for this call of solve (started at ``start`` after ``run_outer`` outer iterations:
    a resume's clock starts anew), agreed by every rank."""

    def late(run: Training, state: SolverState) -> bool:
        elapsed, done = time.perf_counter() - start, state.outer - run_outer
        return _agreed(run, clock_starts_stage(run.cfg, elapsed, done, state.outer))

    return late


def _agreed(run: Training, flag: bool) -> bool:
    """``flag`` on any rank, for a decision every rank of a data-parallel run must take alike."""
    return bool(run.world.any(torch.tensor([flag], device=run.cfg.device))[0])


def out_of_time(now: float, deadline: float | None, pace: float) -> bool:
    """Whether a solve must stop training now to finish inside its ``deadline``: the next outer iteration and
    the verdict after it would not fit, each counted as one outer iteration at this call's mean ``pace``
    (seconds). The verdict draws as many samples as a constraint test (200,000) and certifies them; on
    Dirichlet D = 20 (one thread) it took 3.0-3.6 s against about 14 s an outer iteration, and when
    training stopped after the first outer iteration past the limit these runs took 315-323 s of a
    300 s limit (279-290 s with this rule).

    Example:
        >>> out_of_time(250.0, 300.0, 20.0), out_of_time(261.0, 300.0, 20.0), out_of_time(5.0, None, 20.0)
        (False, True, False)
    """
    return deadline is not None and now + 2.0 * pace >= deadline


def _out_of_time(run: Training, deadline: float | None, start: float, done: int) -> bool:
    """:func:`out_of_time` after ``done`` outer iterations of this call, begun at ``start`` (decided alike on every
    rank of a data-parallel run)."""
    if deadline is None:
        return False
    now = time.perf_counter()
    return _agreed(run, out_of_time(now, deadline, (now - start) / max(done, 1)))


def _finish(run: Training, state: SolverState, ref: Reference | None, timed_out: bool = False) -> Result:
    """Evaluate the trained flow, certify it, and give the verdict (saying so if the time limit stopped it)."""
    problem, cfg, flow = run.problem, run.cfg, run.flow
    flow.eval()
    ev = evaluate(flow, problem, ref, n=cfg.eval_samples)
    # the final state passed the test on `patience` fresh draws, and its table shows every row within tolerance
    constraints_met = state.passes >= cfg.patience and bool(ev["constraints"]["within_1pct"].all())
    certificate, failure = None, None
    if problem.rows:
        try:
            certificate = final_certificate(problem, run.alm, *ev["draws"], flow=flow)
        except (ValueError, RuntimeError) as err:  # a certificate must not cost the trained flow
            failure = f"the dual certificate could not be computed ({type(err).__name__}: {err})"
            warnings.warn(f"{failure}; the rest of the result stands", stacklevel=3)
    off = rows_off(ev["constraints"])
    why = why_not_converged(constraints_met, certificate, cfg.gap_tol, cfg.kl_upper_tol, off)
    if why is None and failure is not None:
        why = failure
    if why is not None and timed_out:
        of = "" if cfg.steps is None else f" of {cfg.steps}"
        why += f"; stopped at the time limit ({cfg.time_limit:g} s) after {state.step}{of} steps"
    kept = (
        "entropy",
        "entropy_stderr",
        "constraints",
        "kl_stderr",
        "kl_knn",
        "entropy_knn",
        "max_abs_violation",
    )
    return Result(
        flow=flow,
        problem=problem,
        history=pd.DataFrame(state.history),
        reference=ref,
        kl_to_reference=ev["kl_to_reference"],
        converged=why is None,
        seconds=time.perf_counter() - run.start,
        config=cfg,
        lagrangian=run.alm.state_dict(),
        certificate=certificate,
        constraints_met=constraints_met,
        why_not_converged=why,
        **{k: ev[k] for k in kept},
    )


def solve(
    problem: MaxEntProblem,
    progress: bool | None = None,
    reference: Reference | None | bool = True,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    spec_path: str | Path | None = None,
    world: World | None = None,
    model: MaxEntModel | None = None,
    **settings: object,
) -> Result:
    r"""Maximize entropy under ``problem``'s constraints with a flow; see :class:`SolverConfig` for ``settings``.

    Args:
        problem: the constraint spec.
        progress: ``True`` a tqdm bar, ``False`` nothing, ``None`` (default) the bar
            when stderr is a terminal and otherwise a plain log line every 10 s.
        reference: ``True`` computes the exact answer when one exists
            (closed form or grid), ``False`` skips it, or pass one.
        checkpoint: write the solver's state here (atomically) after every
            outer iteration; see :mod:`~maxent_mdn.training.checkpoint`.
        resume: continue from ``checkpoint`` instead of starting afresh (the
            settings must match, except a larger ``steps``); the result is
            bit-identical to an uninterrupted run on CPU.
        spec_path: the spec file the problem came from (recorded in checkpoints).
        world: data-parallel training over the initialized process group
            (:func:`~maxent_mdn.training.distributed.init_distributed`): each
            rank draws ``batch / size`` samples, the step equals the
            single-process step on the global batch, only rank 0 writes the
            checkpoint and shows progress. Default: this process alone.
        model: train this model instead of building one from the settings: any
            :class:`~maxent_mdn.model.contract.MaxEntModel`, e.g. a :class:`~maxent_mdn.Flow`
            of your own layers (zuko's through :class:`~maxent_mdn.FromTorch`; README, "Bring
            your own layers"). The architecture settings (``base``, ``transform``, ``layers``,
            ``standardize``, ...) are then unused; its support must be the problem's.
            ``save_run`` writes its parameters, which ``load_model`` cannot rebuild.
        **settings: any field of :class:`SolverConfig` (``base``, ``components``,
            ``transform``, ``layers``, ``steps``, ``tau``, ``seed``, ...).

    Non-finite values (log-density, a statistic, a gradient, a parameter) roll
    the flow back to the start of the inner run and halve the learning rate;
    after ``max_rollbacks`` such faults the solve stops with a
    ``FloatingPointError`` naming the term that went non-finite.

    Example:
        >>> from maxent_mdn import MaxEntProblem, Mean, Positive
        >>> problem = MaxEntProblem(1, [Mean(2.0)], support=Positive(), name="exp")
        >>> result = solve(problem, steps=20, inner_steps=10, test_batches=5, eval_samples=500, progress=False)
        >>> summary = result.summary()
        >>> summary["problem"], summary["constraints"][0]["row"], "dual_bound" in summary
        ('exp', 'mean[0]', True)
    """
    cfg, world = _configure(settings, resume, checkpoint, world)
    cfg = cfg.resolved_for(problem, model is not None)  # "auto" and None -> what runs, so files record it
    progress = progress if world.is_main else False
    torch.manual_seed(cfg.seed)
    # the statistics' pre-flight first, so a statistic that raises is named before the grid checks call it
    if world.distributed and model is not None and model.discrete:  # the rad base is refused in _configure
        raise ValueError(
            f"data-parallel training needs a fully reparameterized model; {type(model).__name__} draws a "
            "discrete variable (its score-function term is not split across processes); run it in one process"
        )
    flow = _build_flow(problem, cfg, model)
    check_feasible(problem)  # a clear error now rather than a solver that cannot converge
    ref = reference_for(problem) if reference is True else (reference or None)

    start = time.perf_counter()
    deadline = None if cfg.time_limit is None else start + cfg.time_limit  # this call's time (a resume: anew)
    rng = np.random.default_rng(cfg.seed)
    if world.distributed:  # the same parameters everywhere, a different sample stream per rank
        world.broadcast_parameters(flow)
        torch.manual_seed(cfg.seed + 7919 * world.rank)
    alm = _lagrangian(problem, cfg, not resume, ref)  # a resume restores its own multipliers and step
    state, seconds = _start(flow, problem, alm, cfg, world, rng, checkpoint if resume else None)
    clock, first_outer = _stage_clock(run_outer=state.outer, start=start), state.outer
    desc = problem.name if cfg.steps is not None else f"{problem.name} (<= {cfg.time_limit:g} s)"
    bar = Progress(cfg.steps, mode=progress, desc=desc, initial=state.step)
    run = Training(problem, cfg, flow, alm, world, TailAverage(flow), bar, rng, start - seconds)
    sha = spec_digest(spec_path) if checkpoint is not None and spec_path else None  # read once
    trace = dual_trace if cfg.trace_samples and problem.rows and world.is_main else None
    stop_check = certified_stop if cfg.stop_draws and problem.rows else None
    timed_out, stopped = False, False
    try:
        while state.step < cfg.step_budget:
            if not outer_iteration(run, state):  # rolled back: the same inner run again at half the rate
                continue
            if after_inner_run(run, state, trace, stop_check, late=clock(run, state)):
                stopped = True
                break
            if checkpoint is not None and world.is_main:
                _save(run, state, checkpoint, spec_path, sha)
            if _out_of_time(run, deadline, start, state.outer - first_outer):
                timed_out = True
                break
    finally:
        bar.close()
    kept = None if stopped else keep_best(run, state)
    result = _finish(run, state, ref, timed_out)
    result.kept_step = kept
    result.custom_model = model is not None
    return result
