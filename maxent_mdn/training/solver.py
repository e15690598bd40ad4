r"""``solve``: train a flow to the maximum-entropy distribution of a problem (MEFN's algorithm)."""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..model import Flow, MaxEntModel
from ..objective.lagrangian import AugmentedLagrangian
from ..objective.score import score_function_term
from ..problem.feasibility import check_feasible
from ..problem.preflight import check_statistics
from ..problem.scale import standardization
from ..problem.spec import MaxEntProblem
from ..reference import Reference, reference_for
from .averaging import TailAverage
from .checkpoint import load_checkpoint, save_checkpoint, spec_digest
from .config import SolverConfig
from .distributed import World
from .evaluate import evaluate
from .progress import Progress
from .result import Result
from .schedule import TemperatureSchedule
from .verdict import dual_trace, final_certificate, why_not_converged

__all__ = ["Result", "SolverConfig", "solve", "why_not_converged"]


def _test_violations(
    flow: MaxEntModel, problem: MaxEntProblem, alm: AugmentedLagrangian, cfg: SolverConfig, world: World
) -> tuple[torch.Tensor, torch.Tensor]:
    """Violations :math:`g` of ``test_batches`` independent batches ``(B, M)``, and the covariance of T ``(M, M)``.

    Data-parallel: each rank draws its share of the batches and all see all of them.
    """
    means, covs = [], []
    with torch.no_grad():
        for _ in range(-(-cfg.test_batches // world.size)):
            t = problem.statistics(flow.rsample((cfg.test_batch_size,))).double()
            means.append(alm.violation(t.mean(0)))
            covs.append(torch.cov(t.T).reshape(t.shape[1], t.shape[1]))
        means_, covs_ = world.gather_values(torch.stack(means)), world.gather_values(torch.stack(covs))
    return means_.cpu(), covs_.mean(0).cpu()


def _check_finite(
    problem: MaxEntProblem, step: int, log_q: torch.Tensor, stats_: torch.Tensor, world: World
) -> None:
    """Raise ``FloatingPointError`` naming the non-finite term, on every rank alike."""
    local = torch.cat([~torch.isfinite(log_q).all().reshape(1), ~torch.isfinite(stats_).all(0)])
    bad = world.any(local)
    if bad[0]:
        raise FloatingPointError(f"step {step}: the flow's log-density went non-finite")
    if bad[1:].any():
        names = [label for label, b in zip(problem.labels, bad[1:].tolist(), strict=True) if b]
        raise FloatingPointError(f"step {step}: constraint statistic {', '.join(names)} went non-finite")


def _check_gradients(flow: torch.nn.Module, step: int) -> None:
    for name, p in flow.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            raise FloatingPointError(f"step {step}: the gradient of {name} went non-finite")


def _check_parameters(flow: torch.nn.Module, step: int) -> None:
    for name, p in flow.named_parameters():
        if not torch.isfinite(p).all():
            raise FloatingPointError(f"step {step}: parameter {name} went non-finite")


def _inner_run(
    flow: MaxEntModel,
    problem: MaxEntProblem,
    alm: AugmentedLagrangian,
    cfg: SolverConfig,
    schedule: TemperatureSchedule,
    averager: TailAverage,
    history: list[dict[str, float]],
    bar: Progress,
    step: int,
    outer: int,
    lr: float,
    start: float,
    world: World,
) -> None:
    """One inner run of Adam on the augmented Lagrangian (fresh moments); raises ``FloatingPointError`` on NaN/inf."""
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    inner = min(cfg.inner_steps, cfg.steps - step)
    average_from = inner - int(cfg.average * inner)  # tail averaging: the last `average` part
    labels = problem.labels
    tempered = flow.temperature is not None
    discrete = flow.discrete  # RAD: drawn pieces need a score-function term
    batch = world.local(cfg.batch, "batch")
    parallel = {"gather": world.gather} if flow.uses_nested_batch and world.distributed else {}
    total = world.sum if world.distributed else None
    for i in range(inner):
        if tempered:
            flow.temperature = schedule(step)
        if discrete:
            x, log_q, log_gate = flow.rsample_with_score(batch)
        else:
            x, log_q = flow.rsample_and_log_prob(batch, estimator=cfg.estimator, **parallel)
        stats_ = problem.statistics(x)
        _check_finite(problem, step, log_q, stats_, world)
        loss, g = alm.loss(stats_, log_q, total)
        objective = loss + score_function_term(loss, stats_, log_q, log_gate) if discrete else loss
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        world.average_gradients(flow)
        _check_gradients(flow, step)
        optimizer.step()
        _check_parameters(flow, step)
        if cfg.average and i >= average_from:
            averager.update()
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == 1:
            row = {
                "step": step,
                "outer": outer,
                "entropy": -float(world.sum(log_q.detach().sum()) / cfg.batch),
                "loss": float(loss.detach()),
            }
            row.update({f"g:{k}": float(v) for k, v in zip(labels, g.tolist(), strict=True)})
            row.update({f"lambda:{k}": float(v) for k, v in zip(labels, alm.lam.tolist(), strict=True)})
            row.update({"c": alm.c, "lr": lr, "tau": flow.temperature if tempered else float("nan")})
            row["seconds"] = time.perf_counter() - start
            history.append(row)
            bar.set_postfix(
                H=f"{row['entropy']:.3f}",
                viol=f"{float(g.abs().max()) if g.numel() else 0.0:.2g}",
                c=f"{alm.c:g}",
            )


def _build_flow(problem: MaxEntProblem, cfg: SolverConfig) -> Flow:
    """The untrained flow, after every statistic passed :func:`check_statistics` on 256 of its samples."""
    flow = cfg.build_flow(problem.dim, problem.support, standardization(problem) if cfg.standardize else None)
    device = torch.device(cfg.device)
    rngs = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rngs), torch.no_grad():  # leaves the training streams as they were
        samples = flow.rsample((256,))
    check_statistics(problem, samples)  # numpy calls, detached or step statistics: exit 2 now, not at step 1
    return flow


def solve(
    problem: MaxEntProblem,
    progress: bool | None = None,
    reference: Reference | None | bool = True,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    spec_path: str | Path | None = None,
    world: World | None = None,
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
    unknown = set(settings) - {f.name for f in dataclasses.fields(SolverConfig)}
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; see SolverConfig")
    cfg = SolverConfig(**settings).validate()  # type: ignore[arg-type]
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path to resume from")
    world = world if world is not None else World(use_process_group=False)  # opt-in only
    if world.distributed:
        if cfg.base == "rad":
            raise ValueError(
                "data-parallel training supports the gaussian, gumbel-mog and exact-mog bases, not rad"
            )
        if resume:
            raise ValueError("resuming a data-parallel solve is not supported; resume it in one process")
        if cfg.estimator == "loo":
            raise ValueError(
                "the leave-one-out estimator is not available in data-parallel training; use nested"
            )
        world.local(cfg.batch, "batch")
    progress = progress if world.is_main else False
    torch.manual_seed(cfg.seed)
    # the statistics' pre-flight first, so a statistic that raises is named before the grid checks call it
    flow = _build_flow(problem, cfg)
    check_feasible(problem)  # a clear error now rather than a solver that cannot converge
    ref = reference_for(problem) if reference is True else (reference or None)

    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    if world.distributed:  # the same parameters everywhere, a different sample stream per rank
        world.broadcast_parameters(flow)
        torch.manual_seed(cfg.seed + 7919 * world.rank)
    schedule = TemperatureSchedule(cfg.tau, cfg.anneal_rate, cfg.tau_min)
    alm = AugmentedLagrangian(
        problem.targets, problem.relations, cfg.c0, cfg.beta, cfg.gamma, cfg.c_max, cfg.dual_step
    )
    state = {
        "norms_before": None,
        "history": [],
        "step": 0,
        "outer": 0,
        "passes": 0,
        "lr_scale": 1.0,
        "rollbacks": 0,
    }
    if resume:
        saved = load_checkpoint(checkpoint, cfg, problem.name)  # type: ignore[arg-type]
        flow.load_state_dict(saved["flow"])
        alm.load_state_dict(saved["alm"])
        state.update({k: saved[k] for k in state})
        torch.set_rng_state(saved["rng_torch"])
        rng.bit_generator.state = saved["rng_numpy"]
        start -= saved["seconds"]
    else:
        g_before, cov = _test_violations(flow, problem, alm, cfg, world)
        alm.set_covariance(cov)
        state["norms_before"] = alm.norms(g_before)
    spec_sha256 = spec_digest(spec_path) if checkpoint is not None and spec_path else None  # read once
    history: list[dict[str, float]] = state["history"]
    step, outer, passes = state["step"], state["outer"], state["passes"]
    averager = TailAverage(flow)
    bar = Progress(cfg.steps, mode=progress, desc=problem.name, initial=step)
    try:
        while step < cfg.steps:
            # Adam's step has a fixed size whatever the gradient noise, so the answer jitters by
            # about lr: decay it per outer iteration to reach a 1% tolerance; moments reset (EPI)
            lr = max(cfg.lr_min, cfg.lr * cfg.lr_decay**outer) * state["lr_scale"]
            snapshot = copy.deepcopy(flow.state_dict())
            try:
                _inner_run(
                    flow, problem, alm, cfg, schedule, averager, history, bar, step, outer, lr, start, world
                )
            except FloatingPointError as err:  # roll back to the start of this inner run, halve the lr
                state["rollbacks"] += 1
                if state["rollbacks"] > cfg.max_rollbacks:
                    raise FloatingPointError(
                        f"{err}; stopped after {cfg.max_rollbacks} rollbacks with the learning rate halved each "
                        "time (see history.csv; try a smaller --lr or a float64 run)"
                    ) from None
                flow.load_state_dict(snapshot)
                averager.reset()
                del history[len([r for r in history if r["step"] <= step]) :]
                state["lr_scale"] *= 0.5
                bar.reset_to(step)
                warnings.warn(f"{err}: rolled back to step {step}, learning rate halved", stacklevel=2)
                continue
            step += min(cfg.inner_steps, cfg.steps - step)
            averager.copy_to()
            outer += 1
            g_after, cov = _test_violations(flow, problem, alm, cfg, world)
            if cfg.trace_samples and problem.rows and world.is_main:
                if not history or history[-1]["step"] != step:  # a row for this step, between log_every rows
                    history.append({"step": step, "outer": outer - 1})
                history[-1].update(dual_trace(flow, problem, alm, cfg))
            converged, _ = alm.converged(g_after, rtol=cfg.rtol, atol=cfg.atol)
            passes = passes + 1 if converged else 0
            if passes >= cfg.patience and outer >= cfg.min_outer:
                break
            alm.set_covariance(cov)
            alm.update_multipliers(g_after.mean(0))
            norms_after = alm.norms(g_after)
            if not converged:  # at the noise floor norms cannot shrink; growing c there only adds noise
                alm.update_penalty(state["norms_before"], norms_after, rng)
            state["norms_before"] = norms_after
            if checkpoint is not None and world.is_main:
                state.update(step=step, outer=outer, passes=passes)
                save_checkpoint(
                    checkpoint,
                    {
                        **state,
                        "problem": problem.name,
                        "spec": spec_path,
                        "spec_sha256": spec_sha256,
                        "config": dataclasses.asdict(cfg),
                        "flow": flow.state_dict(),
                        "alm": alm.state_dict(),
                        "rng_torch": torch.get_rng_state(),
                        "rng_numpy": rng.bit_generator.state,
                        "seconds": time.perf_counter() - start,
                    },
                )
    finally:
        bar.close()
    constraints_met = passes >= cfg.patience  # the final state passed the test on `patience` fresh draws

    flow.eval()
    ev = evaluate(flow, problem, ref, n=cfg.eval_samples)
    certificate, failure = None, None
    if problem.rows:
        try:
            certificate = final_certificate(problem, alm, *ev["draws"])
        except (ValueError, RuntimeError) as err:  # a certificate must not cost the trained flow
            failure = f"the dual certificate could not be computed ({type(err).__name__}: {err})"
            warnings.warn(f"{failure}; the rest of the result stands", stacklevel=2)
    why = why_not_converged(constraints_met, certificate, cfg.gap_tol)
    if why is None and failure is not None:
        why = failure
    return Result(
        flow=flow,
        problem=problem,
        entropy=ev["entropy"],
        entropy_stderr=ev["entropy_stderr"],
        constraints=ev["constraints"],
        history=pd.DataFrame(history),
        reference=ref,
        kl_to_reference=ev["kl_to_reference"],
        kl_stderr=ev["kl_stderr"],
        kl_knn=ev["kl_knn"],
        entropy_knn=ev["entropy_knn"],
        max_abs_violation=ev["max_abs_violation"],
        converged=why is None,
        seconds=time.perf_counter() - start,
        config=cfg,
        lagrangian=alm.state_dict(),
        certificate=certificate,
        constraints_met=constraints_met,
        why_not_converged=why,
    )
