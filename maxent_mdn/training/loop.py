r"""The parts of MEFN's loop: the solver's state, one inner run, and the update after it.

:func:`~maxent_mdn.training.solve` is a short loop over these. An outer
iteration :math:`k` is

1. :func:`inner_run`: ``inner_steps`` steps of Adam (fresh moments) on the
   augmented Lagrangian :math:`-H(q) + \lambda^\top g + \tfrac c2 \|g\|_W^2`
   at fixed :math:`(\lambda, c)`, tail-averaged;
2. :func:`test_violations`: the violations :math:`g` on ``test_batches``
   independent batches;
3. :func:`after_inner_run`: the convergence test, then (unless it stops) the
   multiplier step and the penalty update (MEFN's algorithm 1).

With ``gibbs_stage`` (on by default for the built-in flows), from outer iteration ``min_outer`` on (or,
under a time limit, from the first one that ends past ``gibbs_time`` of it, not before ``min_outer // 3`` and
with room left: :func:`~maxent_mdn.training.solver.clock_starts_stage`),
a solve that has not stopped runs a second stage: the penalty is dropped for good
(:meth:`~maxent_mdn.objective.lagrangian.AugmentedLagrangian.drop_penalty`), so
each inner run is a reverse-KL fit of the flow to the Gibbs form
:math:`p_\eta \propto e^{-\lambda^\top T}` with no half-batch violation in its
gradient, and the multipliers take the full whitened Newton step
:math:`\lambda \leftarrow \lambda + W \hat g` on the test's violations, whose
fixed point is the flow that meets the constraints (the cap ``dual_step`` is for
a flow that has not yet fit :math:`p_\eta`; after a warm start it left 10 power
moments unconverged for 12 outer iterations). The penalty's gradient
:math:`c\, g^{(2)} \nabla g^{(1)}` is :math:`c` times the noise of a half batch
once the violations reach their sampling floor, and :math:`c` has grown by then
(to 64 on a 20-D Dirichlet by step 1,750).

A non-finite value anywhere in step 1, or a batch violation beyond
:func:`divergence_limit`, raises ``FloatingPointError``;
:func:`roll_back` restores the flow to the start of the inner run and halves
the learning rate.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ..model import MaxEntModel
from ..objective.lagrangian import AugmentedLagrangian
from ..objective.score import score_function_term
from ..problem.spec import MaxEntProblem
from .averaging import TailAverage
from .config import SolverConfig
from .distributed import World
from .progress import Progress

__all__ = [
    "SolverState",
    "Training",
    "after_inner_run",
    "divergence_limit",
    "forked_rng",
    "inner_run",
    "keep_best",
    "learning_rate",
    "roll_back",
    "test_violations",
]


@contextmanager
def forked_rng(device: str | torch.device) -> Iterator[None]:
    """Draw inside without moving the random streams of the CPU and of ``device`` (a CUDA one too)."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        yield


@dataclasses.dataclass
class SolverState:
    """What changes between outer iterations; a checkpoint stores exactly these fields.

    Attributes:
        step: optimizer steps taken.
        outer: outer iterations completed.
        passes: consecutive outer iterations whose constraint test passed.
        lr_scale: the learning-rate factor left by rollbacks (halved at each).
        rollbacks: non-finite faults so far.
        norms_before: the violation norms of the previous test (for the penalty update).
        history: one row per logged step (``history.csv``).
        best: the passing state with the smallest certified ``kl_upper`` so far (its ``step``,
            ``kl_upper``, ``flow`` and ``alm`` state), which :func:`keep_best` returns to when training
            goes on past it without stopping; ``None`` before the first stop check.
        gibbs: whether the second stage (no penalty, :func:`after_inner_run`) has begun.

    Example:
        >>> state = SolverState()
        >>> state.step, sorted(state.as_dict())[:3]
        (0, ['best', 'gibbs', 'history'])
    """

    step: int = 0
    outer: int = 0
    passes: int = 0
    lr_scale: float = 1.0
    rollbacks: int = 0
    norms_before: torch.Tensor | None = None
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best: dict[str, Any] | None = None
    gibbs: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The fields by name (not copied), as a checkpoint stores them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> SolverState:
        """The state a checkpoint stored (extra keys are ignored, missing ones take their defaults)."""
        return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls) if f.name in saved})


@dataclasses.dataclass
class Training:
    """What stays fixed over a solve's outer iterations (the multipliers change inside ``alm``)."""

    problem: MaxEntProblem
    cfg: SolverConfig
    flow: MaxEntModel
    alm: AugmentedLagrangian
    world: World
    averager: TailAverage
    bar: Progress
    rng: np.random.Generator
    start: float


def learning_rate(cfg: SolverConfig, state: SolverState) -> float:
    """Adam's rate for the next inner run: ``max(lr_min, lr * lr_decay**outer) * lr_scale``.

    Adam's step has a fixed size whatever the gradient noise, so the answer jitters by about the
    rate: decaying it per outer iteration reaches a 1% tolerance.
    """
    return max(cfg.lr_min, cfg.lr * cfg.lr_decay**state.outer) * state.lr_scale


def test_violations(
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


def _check_tensors(flow: torch.nn.Module, step: int, gradients: bool) -> None:
    """Raise ``FloatingPointError`` naming the first parameter (or its gradient) that is not finite.

    One check of all of them at once (a per-tensor check, a synchronization each, took 5% of a
    ``gaussian_3d`` solve); only a failing check looks for the name.
    """
    named = [(name, p.grad if gradients else p) for name, p in flow.named_parameters()]
    values = [v.reshape(-1) for _, v in named if v is not None]
    if not values or bool(torch.isfinite(torch.cat(values)).all()):
        return
    what = "the gradient of " if gradients else "parameter "
    name = next(n for n, v in named if v is not None and not torch.isfinite(v).all())
    raise FloatingPointError(f"step {step}: {what}{name} went non-finite")


def _history_row(
    run: Training, step: int, outer: int, lr: float, log_q: torch.Tensor, loss: torch.Tensor, g: torch.Tensor
) -> dict[str, float]:
    """One row of ``history.csv``: entropy estimate, loss, violations, multipliers, penalty, rate, temperature."""
    labels, alm = run.problem.labels, run.alm
    row = {
        "step": step,
        "outer": outer,
        "entropy": -float(run.world.sum(log_q.detach().sum()) / run.cfg.batch),
        "loss": float(loss.detach()),
    }
    row.update({f"g:{k}": float(v) for k, v in zip(labels, g.tolist(), strict=True)})
    row.update({f"lambda:{k}": float(v) for k, v in zip(labels, alm.lam.tolist(), strict=True)})
    tau = run.flow.temperature
    row.update({"c": alm.c, "lr": lr, "tau": float("nan") if tau is None else tau})
    row["seconds"] = time.perf_counter() - run.start
    return row


def _loss(run: Training, step: int, batch: int, parallel: dict[str, object]) -> tuple[torch.Tensor, ...]:
    """One batch's objective (with RAD's score-function term), and its loss, ``log q`` and violations."""
    flow, total = run.flow, run.world.sum if run.world.distributed else None
    flow.on_step(step)  # e.g. the Gumbel-MoG base's annealed temperature
    log_gate = None
    if flow.discrete:  # RAD: drawn pieces need a score-function term
        x, log_q, log_gate = flow.rsample_with_score(batch)
    else:
        x, log_q = flow.rsample_and_log_prob(batch, estimator=run.cfg.estimator, **parallel)
    stats_ = run.problem.statistics(x)
    _check_finite(run.problem, step, log_q, stats_, run.world)
    loss, g = run.alm.loss(stats_, log_q, total)
    objective = loss if log_gate is None else loss + score_function_term(loss, stats_, log_q, log_gate)
    return objective, loss, log_q, g


#: an inner run whose batch violation exceeds this many times the last test's largest batch norm has diverged
DIVERGENCE_FACTOR = 10.0


def divergence_limit(run: Training, state: SolverState) -> float:
    r"""The whitened violation norm of one training batch beyond which the inner run counts as diverged.

    :math:`10 \max\big(\max_b \|g_b\|_W \sqrt{n_{\text{test}} / n},\ \sqrt{M / n}\big)`: ten times
    the largest norm among the last test's batches of :math:`n_{\text{test}}` draws (rescaled to the
    training batch of :math:`n`), or the noise of :math:`M` whitened rows alone if that is larger;
    infinite before the first test. Measured: eight power moments of a lognormal on [0, 5]
    (seed 0, AVX-512 kernels) had E x^8 grow 70-fold within one inner run at c = 16; the
    multipliers then followed it (the multiplier of E x from -25 to 479) and the run ended at KL 4.6.
    The guard caught it at step 1177 (2.59 > 2.27); rolled back at half the rate, the run reached
    KL 0.0064. On trimodal x^6, whose heavy-tailed batches swing most, the largest batch norm
    of each inner run stayed below 0.42 of this limit.
    """
    if state.norms_before is None:
        return math.inf
    batch, rows = run.cfg.batch, max(len(run.problem.labels), 1)
    largest = float(np.max(state.norms_before)) * math.sqrt(run.cfg.test_batch_size / batch)
    return DIVERGENCE_FACTOR * max(largest, math.sqrt(rows / batch))


def inner_run(run: Training, state: SolverState, lr: float) -> None:
    """One inner run of Adam (fresh moments) from ``state.step``; appends to ``state.history``, leaves the counters.

    Raises ``FloatingPointError`` naming the first non-finite log-density, statistic, gradient or parameter,
    or a batch violation beyond :func:`divergence_limit` (a diverging run would drag the multipliers along).
    """
    flow, cfg, world = run.flow, run.cfg, run.world
    limit = divergence_limit(run, state)
    # foreach: one kernel per op over all parameters, the same values, 1.5 ms a step less
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr, foreach=True)
    inner = min(cfg.inner_steps, cfg.step_budget - state.step)
    average_from = inner - int(cfg.average * inner)  # tail averaging: the last `average` part
    batch = world.local(cfg.batch, "batch")
    parallel = {"gather": world.gather} if flow.uses_nested_batch and world.distributed else {}
    step = state.step
    for i in range(inner):
        objective, loss, log_q, g = _loss(run, step, batch, parallel)
        if g.numel():
            norm = float(run.alm.norms(g.detach().reshape(1, -1))[0])
            if norm > limit:
                raise FloatingPointError(
                    f"step {step}: the constraint violations diverged (whitened norm {norm:.3g} > {limit:.3g})"
                )
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        world.average_gradients(flow)
        _check_tensors(flow, step, gradients=True)
        optimizer.step()
        _check_tensors(flow, step, gradients=False)
        if cfg.average and i >= average_from:
            run.averager.update()
        step += 1
        run.bar.update(1)
        if step % cfg.log_every == 0 or step == 1:
            state.history.append(_history_row(run, step, state.outer, lr, log_q, loss, g))
            violation = float(g.abs().max()) if g.numel() else 0.0
            run.bar.set_postfix(
                H=f"{state.history[-1]['entropy']:.3f}", viol=f"{violation:.2g}", c=f"{run.alm.c:g}"
            )


def roll_back(
    run: Training, state: SolverState, snapshot: dict[str, torch.Tensor], err: FloatingPointError
) -> None:
    """Restore the flow to ``snapshot`` (the start of the inner run) and halve the learning rate.

    Raises ``FloatingPointError`` (naming the fault) after ``max_rollbacks`` of them.
    """
    state.rollbacks += 1
    if state.rollbacks > run.cfg.max_rollbacks:
        raise FloatingPointError(
            f"{err}; stopped after {run.cfg.max_rollbacks} rollbacks with the learning rate halved each "
            "time (see history.csv; try a smaller --lr or a float64 run)"
        ) from None
    run.flow.load_state_dict(snapshot)
    run.averager.reset()
    del state.history[len([r for r in state.history if r["step"] <= state.step]) :]
    state.lr_scale *= 0.5
    run.bar.reset_to(state.step)
    warnings.warn(f"{err}: rolled back to step {state.step}, learning rate halved", stacklevel=4)


def outer_iteration(run: Training, state: SolverState) -> bool:
    """One inner run from a snapshot; ``False`` if it was rolled back (see :func:`roll_back`)."""
    snapshot = copy.deepcopy(run.flow.state_dict())
    try:
        inner_run(run, state, learning_rate(run.cfg, state))
    except FloatingPointError as err:
        roll_back(run, state, snapshot, err)
        return False
    state.step += min(run.cfg.inner_steps, run.cfg.step_budget - state.step)
    run.averager.copy_to()
    state.outer += 1
    return True


def _history_at_step(state: SolverState) -> dict[str, float]:
    """This step's history row (a new one between ``log_every`` rows)."""
    if not state.history or state.history[-1]["step"] != state.step:
        state.history.append({"step": state.step, "outer": state.outer - 1})
    return state.history[-1]


def _remember_if_best(run: Training, state: SolverState, kl_upper: float) -> None:
    """Keep a copy of this passing state if its certified ``kl_upper`` is the smallest so far.

    Data-parallel ranks agree: each rank's check drew its own samples, and all compare the largest value.
    """
    value = torch.tensor([kl_upper if math.isfinite(kl_upper) else math.inf], dtype=torch.float64)
    worst = float(run.world.gather_values(value.to(run.cfg.device)).max())
    if state.best is None or worst < state.best["kl_upper"]:
        state.best = {
            "step": state.step,
            "kl_upper": worst,
            "flow": copy.deepcopy(run.flow.state_dict()),
            "alm": copy.deepcopy(run.alm.state_dict()),
        }


def keep_best(run: Training, state: SolverState) -> int | None:
    """At the end of a solve that did not stop on a passing check: return to the certified best passing state.

    Training goes on while the stop check fails, and the state it ends in may fail the constraint test
    that an earlier one passed (the test is a coin flip for a flow at the edge of its tolerance; on
    ``gaussian_3d`` seed 0 the last test failed at step 6000 after passing at 3000-5750). Returns the step
    of the state returned to, or ``None`` when the final state is kept.
    """
    if state.best is None or state.best["step"] == state.step:
        return None
    run.flow.load_state_dict(state.best["flow"])
    run.alm.load_state_dict(state.best["alm"])
    state.passes = run.cfg.patience  # it passed the test `patience` times in a row
    return int(state.best["step"])


def after_inner_run(
    run: Training, state: SolverState, trace: Any = None, stop_check: Any = None, late: bool = False
) -> bool:
    """The constraint test after an inner run, then the multiplier and penalty updates; ``True``: stop.

    The solve stops after ``patience`` consecutive passes, at least ``min_outer`` outer iterations in,
    if ``stop_check(flow, problem, alm, cfg) -> dict`` (optional; its ``stop`` column 1.0 or 0.0, every
    rank of a data-parallel run must agree) lets it. ``trace(flow, problem, alm, cfg) -> dict``
    (optional) adds columns to this step's history row. With ``cfg.gibbs_stage``, from ``min_outer`` outer iterations
    on, or from the first one that is ``late`` (the caller's clock says so:
    :func:`~maxent_mdn.training.solver.clock_starts_stage`), a solve that did not stop drops the penalty for good
    (the module's docstring).
    """
    cfg, alm = run.cfg, run.alm
    g_after, cov = test_violations(run.flow, run.problem, alm, cfg, run.world)
    if trace is not None:
        _history_at_step(state).update(trace(run.flow, run.problem, alm, cfg))
    converged, _ = alm.converged(g_after, rtol=cfg.rtol, atol=cfg.atol, spread=cov.diagonal().sqrt())
    state.passes = state.passes + 1 if converged else 0
    if run.world.is_main:  # the test's outcome, for history.csv: when did it pass, and how often in a row
        _history_at_step(state).update({"test_passed": float(converged), "test_passes": float(state.passes)})
    if state.passes >= cfg.patience and state.outer >= cfg.min_outer:
        if stop_check is None:
            return True
        check = stop_check(run.flow, run.problem, alm, cfg)
        if run.world.is_main:
            _history_at_step(state).update(check)
        if not bool(run.world.any(torch.tensor([check["stop"] < 1.0], device=cfg.device))[0]):
            return True
        # a state whose rows were off on the check's draws ranks after every state whose rows were met
        _remember_if_best(run, state, check["stop_kl_upper"] if check["stop_rows_met"] else math.inf)
    alm.set_covariance(cov)
    # not the answer (see above): the stage, from min_outer on or when the clock says so
    if cfg.gibbs_stage and not state.gibbs and (late or state.outer >= cfg.min_outer):
        state.gibbs = True
        alm.drop_penalty()
    alm.update_multipliers(g_after.mean(0))
    norms_after = alm.norms(g_after)
    if not converged and alm.c > 0:  # at the noise floor norms cannot shrink; growing c there only adds noise
        alm.update_penalty(state.norms_before, norms_after, run.rng)
    state.norms_before = norms_after
    return False
