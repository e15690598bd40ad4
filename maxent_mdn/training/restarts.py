r"""Restarts: solve one spec from several seeds (in parallel processes) and keep the certified best.

A flow's training is non-convex; its seeds end at different distances from the
maximum. The dual certificate measures that distance for each run without the
answer: for a run that meets its constraints,
:math:`\mathrm{KL}(q\,\|\,p^*) \le` ``kl_upper`` (up to sampling error;
:attr:`~maxent_mdn.certify.Certificate.kl_upper`). So
the best run is the one that meets its constraints with the smallest
``kl_upper`` (:func:`rank`), and runs that miss a constraint rank after all
that meet them. As in the solver's verdict, a Pareto-k flag does not demote a
run (on the shipped specs k-hat reaches 0.7-0.9 with bounded weights); the
table shows it.

Every run is written to ``OUT/restarts/seed-S/`` as it finishes (an
interrupted set of restarts keeps its finished runs); ``restarts.csv`` lists
them all with the chosen one marked.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..problem import load_spec
from ..problem.spec import MaxEntProblem
from ..reference import reference_for
from .config import SolverConfig
from .progress import Progress
from .result import Result

__all__ = ["rank", "solve_restarts"]

#: Result fields that a worker process sends back as they are (flow: parameters; problem, reference: rebuilt)
_SENT = tuple(f.name for f in dataclasses.fields(Result) if f.name not in ("flow", "problem", "reference"))


def rank(result: Result) -> tuple[bool, float, float]:
    """Sort key, best first: constraints met, then the smallest ``kl_upper``, then the largest entropy."""
    certified = result.certificate
    cert = None if certified is None else certified.certificate
    bound = cert.kl_upper if cert is not None and math.isfinite(cert.kl_upper) else math.inf
    return (not result.constraints_met, bound, -result.entropy)


def _solve_one(job: tuple[str, dict[str, Any], int, int]) -> dict[str, Any]:
    """One restart in a worker process: the result's fields and the flow's parameters (picklable)."""
    from .solver import solve

    spec, settings, seed, threads = job
    torch.set_num_threads(threads)
    result = solve(load_spec(spec), progress=False, seed=seed, **settings)
    sent = {name: getattr(result, name) for name in _SENT}
    sent["state_dict"] = {k: v.detach().cpu() for k, v in result.flow.state_dict().items()}
    return sent


def _rebuild(sent: dict[str, Any], problem: MaxEntProblem) -> Result:
    """The worker's result in this process: the flow rebuilt from its config, its parameters loaded."""
    cfg: SolverConfig = sent["config"]
    flow = cfg.build_flow_for(problem)
    flow.load_state_dict(sent["state_dict"])
    flow.eval()
    fields = {name: sent[name] for name in _SENT}
    return Result(flow=flow, problem=problem, reference=None, **fields)


def _row(result: Result) -> dict[str, Any]:
    cert = None if result.certificate is None else result.certificate.certificate
    return {
        "seed": result.config.seed,
        "constraints_met": result.constraints_met,
        "converged": result.converged,
        "entropy": result.entropy,
        "gap": math.nan if cert is None else cert.gap,
        "gap_upper": math.nan if cert is None else cert.gap_upper,
        "kl_upper": math.nan if cert is None else cert.kl_upper,
        "ess": math.nan if cert is None else cert.ess,
        "reliable": None if cert is None else cert.reliable,
        "max_abs_violation": result.max_abs_violation,
        "kl_to_reference": result.kl_to_reference,
        "seconds": result.seconds,
    }


def solve_restarts(
    spec: str | Path,
    restarts: int,
    jobs: int = 1,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool | None = None,
    **settings: object,
) -> tuple[Result, pd.DataFrame]:
    """Solve ``spec`` from seeds ``seed, seed + 1, …`` and return the best run (:func:`rank`) and the table.

    Args:
        spec: the spec file (each worker process loads it: in-memory problems do not cross processes).
        restarts: how many seeds (``>= 1``).
        jobs: processes at a time; each gets ``torch.get_num_threads() // jobs`` threads (at least one): the
            caller's threads are shared out (the CLI sets them from ``--threads``).
        seed: the first seed.
        out: where each run is written as it finishes (``out/restarts/seed-S/``), and ``restarts.csv``.
        progress: a bar over the restarts (``None``: on a terminal).
        **settings: :class:`SolverConfig` fields, the same for every restart.

    Each run measures its KL to the exact answer where one exists (the table's ``kl_to_reference``; the
    choice does not look at it). Example: ``maxent-mdn train SPEC --restarts 4 --jobs 2``.
    """
    from .outputs import save_run

    if not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts must be a positive integer, got {restarts!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    SolverConfig(**settings).validate()  # type: ignore[arg-type]  # a bad setting fails here, not in R workers
    spec = str(Path(spec).resolve())
    threads = max(1, torch.get_num_threads() // jobs)
    work = [(spec, settings, seed + k, threads) for k in range(restarts)]
    problem = load_spec(spec)  # here once (the workers load their own)
    results, bar = [], Progress(restarts, mode=progress, desc="restarts")
    context = mp.get_context("spawn")
    with context.Pool(min(jobs, restarts)) as pool:
        for sent in pool.imap_unordered(_solve_one, work):
            result = _rebuild(sent, problem)
            if out is not None:
                save_run(
                    result, Path(out) / "restarts" / f"seed-{result.config.seed}", samples=20_000, plot=False
                )
            results.append(result)
            bar.update(1)
        pool.close()  # let the workers exit on their own (terminate() leaks a semaphore warning)
        pool.join()
    bar.close()
    results.sort(key=lambda r: r.config.seed)
    best = min(results, key=rank)
    table = pd.DataFrame([{**_row(r), "chosen": r is best} for r in results])
    best.reference = reference_for(best.problem)  # each worker measured its KL; the object stays there
    return best, table
