"""Executing runs (one thread each, ``jobs`` processes at a time) and writing one tidy CSV per table."""

from __future__ import annotations

import math
import multiprocessing as mp
import re
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np
import pandas as pd
import torch

from ..model import RAD_BASES
from ..model.base import ESTIMATORS
from ..problem import MaxEntProblem, load_spec, specs_dir
from ..reference import Reference
from ..training.files import write_csv
from .cases import OPTION, dirichlet_case, option_pricing, trimodal_1d, true_call_price
from .journal import Journal
from .mixture_cases import SEPARATIONS, separated_modes, separated_modes_reference
from .registry import DIVERGENCE_IS_DATA, Run, runs
from .scale_cases import POWER_CASES, power_moments, quartic_product, quartic_product_reference

if TYPE_CHECKING:
    from ..training import SolverConfig

__all__ = ["ReproductionError", "execute", "problem_for", "reproduce"]

#: the dimensions of the ``mixture`` experiment's separated-modes cases (2^D modes)
_MODES_DIMS = (1, 2, 4, 8)

_CASES: dict[str, Callable[[], MaxEntProblem]] = {
    "dirichlet-3d": lambda: dirichlet_case(dim=3),
    "dirichlet-5d": lambda: dirichlet_case(dim=5),
    "dirichlet-10d": lambda: dirichlet_case(dim=10),
    "dirichlet-20d": lambda: dirichlet_case(dim=20),
    "trimodal-1d": trimodal_1d,
    "option-pricing": option_pricing,
    **{f"power-{d}-{k}": partial(power_moments, d, k) for d, k in POWER_CASES},
    **{f"quartic-product-{d}d": partial(quartic_product, d) for d in (4, 8)},
    **{f"modes-{d}d-sep{s}": partial(separated_modes, d, s) for d in _MODES_DIMS for s in SEPARATIONS},
}

#: exact answers the generic :func:`~maxent_mdn.reference.reference_for` does not find
_REFERENCES: dict[str, Callable[[], Reference]] = {
    **{f"quartic-product-{d}d": partial(quartic_product_reference, d) for d in (4, 8)},
    **{
        f"modes-{d}d-sep{s}": partial(separated_modes_reference, d, s)
        for d in _MODES_DIMS
        for s in SEPARATIONS
    },
}


def problem_for(case: str) -> MaxEntProblem:
    """A named experiment case, or a shipped spec (``constraints/<case>.py``)."""
    if case in _CASES:
        return _CASES[case]()
    return load_spec(specs_dir() / f"{case}.py")


def _worst_row_pct(constraints: pd.DataFrame) -> float:
    """The largest violation in percent of its row's scale max(|b|, spread) (1.0: at the 1% tolerance)."""
    if constraints.empty:
        return 0.0
    return float((constraints["violation"] / constraints["tolerance"]).max())  # tolerance = 1% of the scale


#: the layers that have spline bins: a row of any other model leaves ``bins`` empty
_BINNED = ("spline", "autoregressive")


def _run_columns(run: Run, problem: MaxEntProblem, cfg: SolverConfig) -> dict[str, object]:
    """The columns that say which solve a row is: experiment, case, problem size, model and seed."""
    model = {
        k: getattr(cfg, k)
        for k in ("base", "components", "transform", "layers", "bins", "tau", "anneal_rate", "estimator")
    }
    model["transform"] = RAD_BASES.get(cfg.base, cfg.transform)  # RAD's couplings: named by its base
    if model["transform"] not in _BINNED:
        model["bins"] = None  # a setting this model does not use is not one of its columns
    return {
        "experiment": run.experiment,
        "case": run.case,
        "dim": problem.dim,
        "rows": len(problem.rows),
        **model,
        "seed": run.seed,
    }


def _diverged_row(run: Run, problem: MaxEntProblem, err: FloatingPointError) -> dict[str, object]:
    """The row of a solve that diverged where that is data (:data:`~.registry.DIVERGENCE_IS_DATA`).

    A weak flow failing is the sweep's result, not a crash: KL is ``inf`` (a median over seeds is then
    ``inf`` when most diverged), ``diverged`` says why and ``steps`` where.
    """
    from ..training import SolverConfig

    cfg = SolverConfig(**run.settings)
    return {
        **_run_columns(run, problem, cfg),
        "kl": math.inf,
        "constraints_met": False,
        "converged": False,
        "steps": int(m.group(1)) if (m := re.search(r"step (\d+)", str(err))) else cfg.steps,
        "diverged": str(err),
    }


def _solve_rows(run: Run) -> dict[str, list[dict]]:
    from ..training import solve

    problem = problem_for(run.case)
    reference = _REFERENCES[run.case]() if run.case in _REFERENCES else True
    try:
        result = solve(problem, progress=False, seed=run.seed, reference=reference, **run.settings)
    except FloatingPointError as err:  # diverged after its rollbacks
        if run.experiment not in DIVERGENCE_IS_DATA:
            raise
        return {run.experiment: [_diverged_row(run, problem, err)]}
    cfg = result.config
    row = {
        **_run_columns(run, problem, cfg),
        "kl": result.kl_to_reference,
        "kl_stderr": result.kl_stderr,
        "kl_knn": result.kl_knn,
        "entropy": result.entropy,
        "entropy_stderr": result.entropy_stderr,
        "reference_entropy": None if result.reference is None else result.reference.entropy,
        "max_violation": result.max_abs_violation,
        "worst_row_pct": _worst_row_pct(result.constraints),
        "constraints_met": result.constraints_met,
        "converged": result.converged,
        "steps": int(result.history["step"].max()) if len(result.history) else 0,  # trained, not kept
        "kept_step": result.kept_step,  # the certified best passing state returned to, if not the last
        "seconds": result.seconds,
        "gibbs_stage": cfg.gibbs_stage,  # the default since issue 19; rows before it lack the column
    }
    cert = result.certificate.certificate if result.certificate is not None else None
    for key in (
        "dual_bound",
        "dual_bound_stderr",
        "gap",
        "gap_stderr",
        "gap_upper",
        "kl_to_gibbs",
        "kl_upper",
        "kl_from_gibbs",
        "ess",
        "pareto_k",
        "missing_mass",
        "missing_mass_stderr",
    ):
        row[key] = None if cert is None else getattr(cert, key)
    row["certificate_reliable"] = None if cert is None else cert.reliable
    if row["reference_entropy"] is not None:
        row["entropy_error"] = row["entropy"] - row["reference_entropy"]
    tables: dict[str, list[dict]] = {run.experiment: [row]}
    if run.case == "option-pricing":
        x = result.flow.sample((200_000,)).double()[:, 0] * OPTION["s0"]  # the case is in units of S0
        disc = math.exp(-OPTION["r"] * OPTION["t"])
        errors = [disc * float((x - k).clamp_min(0).mean()) - true_call_price(k) for k in OPTION["held_out"]]
        row["pricing_error"] = float(np.max(np.abs(errors)))
    if run.experiment == "multimodal" and problem.dim == 1 and result.reference is not None:
        grid = torch.linspace(-3.5, 3.5, 281, dtype=torch.float64).unsqueeze(-1)
        with torch.no_grad():
            q = result.flow.log_prob(grid.to(next(result.flow.parameters())), num_nested=8192).double().exp()
            p = result.reference.log_prob(grid).exp()
        tables["multimodal_curves"] = [
            {
                "case": run.case,
                "base": cfg.base,
                "seed": run.seed,
                "x": float(g),
                "q": float(a),
                "p": float(b),
            }
            for g, a, b in zip(grid[:, 0], q.cpu(), p, strict=True)
        ]
    return tables


def _estimator_curves(run: Run) -> dict[str, list[dict]]:
    """Entropy estimates of one trained Gumbel-MoG flow against the nested batch size, per estimator."""
    from ..training import solve
    from ..training.evaluate import knn_entropy, sample_with_log_prob

    result = solve(problem_for(run.case), progress=False, seed=run.seed, **run.settings)
    flow = result.flow
    x, log_q = sample_with_log_prob(flow, 20_000, num_nested=65_536)
    truth = float(-log_q.mean())
    rows = []
    with torch.no_grad():
        for m in (4, 16, 64, 256, 1024, 4096):
            for estimator in ESTIMATORS:
                if estimator == "independent":  # a fresh nested batch of m for 4096 points at a time
                    vals = [
                        flow.rsample_and_log_prob(4096, estimator=estimator, num_nested=m)[1]
                        for _ in range(5)
                    ]
                else:  # the batch is its own nested batch
                    vals = [
                        flow.rsample_and_log_prob(m, estimator=estimator)[1]
                        for _ in range(max(1, 20_000 // m))
                    ]
                h = -torch.cat(vals).double()
                rows.append(
                    {
                        "case": run.case,
                        "seed": run.seed,
                        "estimator": estimator,
                        "nested": m,
                        "entropy": float(h.mean()),
                        "stderr": float(h.std() / math.sqrt(h.numel())),
                        "truth": truth,
                        "truth_knn": knn_entropy(x.numpy()),
                    }
                )
    return {"estimator_curves": rows}


def _fit_rows(run: Run) -> dict[str, list[dict]]:
    from ..datasets import load_dataset
    from ..training.fit import fit, make_density_model

    settings = dict(run.settings)
    model_name = settings.pop("model")
    torch.manual_seed(run.seed)
    data = load_dataset(run.case, seed=run.seed)
    result = fit(make_density_model(model_name, data.dim), data, seed=run.seed, progress=False, **settings)
    return {
        run.experiment: [
            {
                "experiment": run.experiment,
                "case": run.case,
                "base": model_name,
                "seed": run.seed,
                **result.summary(),
            }
        ]
    }


def execute(run: Run) -> dict[str, list[dict]]:
    """Run one unit on one thread; returns rows per output table.

    The run's own rows get ``cpu_seconds`` (process CPU time): with one thread it
    equals the wall-clock of an uncontended run and, unlike ``seconds``, is not
    inflated when other work shares the cores or the run is paused.
    """
    torch.set_num_threads(1)
    kind = {"solve": _solve_rows, "fit": _fit_rows, "estimator-curves": _estimator_curves}[run.kind]
    cpu = time.process_time()
    produced = kind(run)
    for row in produced.get(run.experiment, []):
        row["cpu_seconds"] = time.process_time() - cpu
    return produced


def _attempt(run: Run) -> tuple[Run, dict[str, list[dict]] | None, str | None]:
    """:func:`execute`, with a failure returned as a message instead of ending the whole reproduction."""
    try:
        return run, execute(run), None
    except Exception as err:  # noqa: BLE001 - reported per run by reproduce, which fails at the end
        return run, None, f"{type(err).__name__}: {err}"


class ReproductionError(RuntimeError):
    """Some runs failed; every other run's rows were kept (journal and CSVs)."""


def reproduce(
    names: Sequence[str],
    quick: bool,
    seeds: int,
    jobs: int,
    out: Path,
    log: Callable[[str], None] | None = None,
    fresh: bool = False,
) -> dict[str, pd.DataFrame]:
    """Run the experiments ``names``; write ``out/<table>.csv`` (atomically) and return the tables.

    Finished runs are journalled in ``out/runs.jsonl`` (:class:`~.journal.Journal`) and
    skipped on the next call unless ``fresh`` (which redoes the runs of ``names`` only); the CSVs are rewritten after every
    run, so an interrupted reproduction keeps its finished runs. A failing run
    does not stop the others: they all finish, then :class:`ReproductionError` names it.
    """
    if jobs < 1 or seeds < 1:
        raise ValueError(f"jobs and seeds must be at least 1, got jobs={jobs}, seeds={seeds}")
    log = log or (lambda s: print(s, file=sys.stderr))
    out = Path(out)
    todo = [r for name in names for r in runs(name, quick, seeds)]
    journal = Journal(out / "runs.jsonl")
    if fresh:
        journal.forget(todo)
    pending = [r for r in todo if not journal.done(r)]
    if len(pending) < len(todo):
        log(
            f"{len(todo) - len(pending)} of {len(todo)} runs already done ({journal.path}; --fresh redoes them)"
        )
    failures: list[str] = []
    start = time.perf_counter()
    frames = _write_tables(todo, journal, out)
    context = mp.get_context("spawn")
    with context.Pool(min(jobs, max(1, len(pending)))) if jobs > 1 else _Serial() as pool:
        for i, (run, produced, error) in enumerate(pool.imap_unordered(_attempt, pending), 1):
            what = f"{run.experiment}/{run.case} seed {run.seed} {_describe(run.settings)}"
            if error is None:
                journal.add(run, produced)
                frames = _write_tables(todo, journal, out)
                log(f"[{i}/{len(pending)}] {what} done after {time.perf_counter() - start:.0f} s")
            else:
                failures.append(f"{what}: {error}")
                log(f"[{i}/{len(pending)}] {what} FAILED: {error}")
        pool.close()  # let the workers exit on their own (terminate() leaks a semaphore warning)
        pool.join()
    if failures:
        raise ReproductionError(
            f"{len(failures)} run(s) failed (the others are saved):\n  " + "\n  ".join(failures)
        )
    return frames


_DESCRIBED = ("base", "model", "components", "transform", "layers", "bins", "tau", "anneal_rate", "estimator")


def _describe(settings: dict[str, object]) -> str:
    shown = {k: v for k, v in settings.items() if k in _DESCRIBED}
    return " ".join(f"{k}={v}" for k, v in shown.items())


def _write_tables(todo: list[Run], journal: Journal, out: Path) -> dict[str, pd.DataFrame]:
    """Write every table the finished runs of ``todo`` make, rows in registry order."""
    tables: dict[str, list[dict]] = {}
    for run in todo:
        if journal.done(run):
            for table, rows in journal.tables(run).items():
                tables.setdefault(table, []).extend(rows)
    frames = {}
    for table, rows in tables.items():
        frames[table] = pd.DataFrame(rows)
        write_csv(frames[table], out / f"{table}.csv")
    return frames


class _Serial:
    """A stand-in for a process pool with one job (no subprocesses)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap_unordered(self, fn: Callable[[Run], object], items: list[Run]) -> object:
        return map(fn, items)

    def close(self) -> None:
        return None

    def join(self) -> None:
        return None
