"""What the dual certificate costs: a default solve with and without the per-iteration trace, and the final certificate.

Run: ``python benchmarks/certificate_cost.py [--spec gaussian_3d]``. Two solves of one spec with
the default settings run side by side, one thread each (``trace_samples`` = 0 and the default);
the final certificate (polish on 100,000 of the 200,000 evaluation draws, the bound on the other
100,000) is timed on the traced run's flow, apart from the evaluation draws it shares with the
entropy estimate. Appends a row to ``benchmarks/certificate_cost.csv``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _solve(job: tuple[str, int]) -> dict[str, float]:
    spec, trace = job
    import torch

    from maxent_mdn import load_spec
    from maxent_mdn.training import solve
    from maxent_mdn.training.evaluate import sample_with_log_prob
    from maxent_mdn.training.verdict import final_certificate

    torch.set_num_threads(1)
    problem = load_spec(ROOT / "constraints" / f"{spec}.py")
    start = time.perf_counter()
    result = solve(problem, progress=False, seed=0, trace_samples=trace)
    row = {"trace_samples": trace, "solve_seconds": time.perf_counter() - start}
    if trace:
        torch.manual_seed(1)
        t0 = time.perf_counter()
        x, log_q = sample_with_log_prob(result.flow, 200_000, 8192)
        row["eval_draws_seconds"] = time.perf_counter() - t0
        from maxent_mdn.objective.lagrangian import AugmentedLagrangian

        alm = AugmentedLagrangian(problem.targets, problem.relations)
        alm.load_state_dict(result.lagrangian)
        t0 = time.perf_counter()
        final_certificate(problem, alm, x, log_q)
        row["certificate_seconds"] = time.perf_counter() - t0
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="gaussian_3d")
    args = parser.parse_args(argv)
    with mp.get_context("spawn").Pool(2) as pool:
        plain, traced = pool.map(_solve, [(args.spec, 0), (args.spec, 4096)])
        pool.close()
        pool.join()
    row = {
        "spec": args.spec,
        "machine": platform.processor() or platform.machine(),
        "solve_without_trace_s": plain["solve_seconds"],
        "solve_with_trace_s": traced["solve_seconds"],
        "trace_share": 1 - plain["solve_seconds"] / traced["solve_seconds"],
        "eval_draws_s": traced["eval_draws_seconds"],
        "certificate_s": traced["certificate_seconds"],
        "certificate_share": traced["certificate_seconds"] / traced["solve_seconds"],
    }
    out = Path(__file__).resolve().parent / "certificate_cost.csv"
    table = pd.concat([pd.read_csv(out), pd.DataFrame([row])]) if out.exists() else pd.DataFrame([row])
    table.to_csv(out, index=False)
    for key, value in row.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    return table


if __name__ == "__main__":
    main()
