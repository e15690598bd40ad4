"""Executing runs (one thread each, ``jobs`` processes at a time) and writing one tidy CSV per table."""

from __future__ import annotations

import math
import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
import torch

from ..problem import MaxEntProblem, load_spec
from ..training.outputs import write_csv
from .cases import OPTION, dirichlet_case, option_pricing, trimodal_1d, true_call_price
from .registry import Run, runs

__all__ = ["SPECS", "execute", "problem_for", "reproduce"]

SPECS = Path(__file__).resolve().parents[2] / "constraints"
_CASES: dict[str, Callable[[], MaxEntProblem]] = {
    "dirichlet-3d": lambda: dirichlet_case(dim=3),
    "dirichlet-5d": lambda: dirichlet_case(dim=5),
    "dirichlet-10d": lambda: dirichlet_case(dim=10),
    "dirichlet-20d": lambda: dirichlet_case(dim=20),
    "trimodal-1d": trimodal_1d,
    "option-pricing": option_pricing,
}


def problem_for(case: str) -> MaxEntProblem:
    """A named experiment case, or a shipped spec (``constraints/<case>.py``)."""
    if case in _CASES:
        return _CASES[case]()
    return load_spec(SPECS / f"{case}.py")


def _solve_rows(run: Run) -> dict[str, list[dict]]:
    from ..training import solve

    problem = problem_for(run.case)
    result = solve(problem, progress=False, seed=run.seed, **run.settings)
    cfg = result.config
    row = {
        "experiment": run.experiment,
        "case": run.case,
        "base": cfg.base,
        "components": cfg.components,
        "tau": cfg.tau,
        "anneal_rate": cfg.anneal_rate,
        "estimator": cfg.estimator,
        "seed": run.seed,
        "kl": result.kl_to_reference,
        "kl_stderr": result.kl_stderr,
        "kl_knn": result.kl_knn,
        "entropy": result.entropy,
        "entropy_stderr": result.entropy_stderr,
        "reference_entropy": None if result.reference is None else result.reference.entropy,
        "max_violation": result.max_abs_violation,
        "converged": result.converged,
        "steps": int(result.history["step"].max()) if len(result.history) else 0,
        "seconds": result.seconds,
    }
    if row["reference_entropy"] is not None:
        row["entropy_error"] = row["entropy"] - row["reference_entropy"]
    tables: dict[str, list[dict]] = {run.experiment: [row]}
    if run.case == "option-pricing":
        x = result.flow.sample((200_000,)).double()[:, 0]
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
            for estimator in ("nested", "loo", "independent", "exact", "concrete-joint"):
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
    """Run one unit on one thread; returns rows per output table."""
    torch.set_num_threads(1)
    kind = {"solve": _solve_rows, "fit": _fit_rows, "estimator-curves": _estimator_curves}[run.kind]
    return kind(run)


def reproduce(
    names: Sequence[str],
    quick: bool,
    seeds: int,
    jobs: int,
    out: Path,
    log: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Run the experiments ``names``; write ``out/<table>.csv`` (atomically) and return the tables."""
    log = log or (lambda s: print(s, file=sys.stderr))
    todo = [r for name in names for r in runs(name, quick, seeds)]
    tables: dict[str, list[dict]] = {}
    start = time.perf_counter()
    context = mp.get_context("spawn")
    with context.Pool(jobs) if jobs > 1 else _Serial() as pool:
        for i, produced in enumerate(pool.imap_unordered(execute, todo), 1):
            for table, rows in produced.items():
                tables.setdefault(table, []).extend(rows)
            log(f"[{i}/{len(todo)}] done after {time.perf_counter() - start:.0f} s")
    frames = {}
    for table, rows in tables.items():
        frame = pd.DataFrame(rows)
        frames[table] = frame
        write_csv(frame, out / f"{table}.csv")
    return frames


class _Serial:
    """A stand-in for a process pool with one job (no subprocesses)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap_unordered(self, fn: Callable[[Run], dict], items: list[Run]) -> object:
        return map(fn, items)
