"""Solve every shipped spec with the default settings: quality against the reference and wall-clock.

Run: ``python benchmarks/solve_specs.py [--base gumbel-mog] [--seeds 1] [--jobs 2] [--only SPEC ...] [--out CSV]``.
Each solve runs in its own process on one thread, ``--jobs`` at a time, so the
seconds are single-core times. Writes ``benchmarks/solve_specs-<base>.csv`` and
prints a Markdown table (the README's results table comes from it).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import sys
from pathlib import Path

import pandas as pd

from maxent_mdn.training.files import write_csv

ROOT = Path(__file__).resolve().parents[1]


def solve_one(job: tuple[str, str, int]) -> dict[str, object]:
    """One default solve of ``constraints/<spec>.py`` (one thread); the CSV row."""
    spec, base, seed = job
    import torch

    from maxent_mdn import load_spec
    from maxent_mdn.training import solve

    torch.set_num_threads(1)
    result = solve(load_spec(ROOT / "constraints" / f"{spec}.py"), base=base, seed=seed, progress=False)
    c = result.constraints
    eq = c[c["relation"] == "=="]
    ratio = eq["violation"] / eq["tolerance"]  # in units of 1% of max(|b|, spread): <= 1 is within 1%
    worst = eq.iloc[int(ratio.to_numpy().argmax())] if len(eq) else None
    cert = result.certificate.certificate if result.certificate else None
    return {
        "spec": spec,
        "base": base,
        "seed": seed,
        "entropy": result.entropy,
        "entropy_stderr": result.entropy_stderr,
        "reference_entropy": result.reference.entropy if result.reference else None,
        "kl": result.kl_to_reference,
        "kl_knn": result.kl_knn,
        "worst_constraint": None if worst is None else worst["row"],
        "worst_value": None if worst is None else worst["value"],
        "worst_target": None if worst is None else worst["target"],
        "worst_in_percent": None if worst is None else float(worst["violation"] / worst["tolerance"]),
        "within_1pct": bool(c["within_1pct"].all()),
        "dual_bound": cert.dual_bound if cert else None,
        "gap": cert.gap if cert else None,
        "gap_stderr": cert.gap_stderr if cert else None,
        "gap_upper": cert.gap_upper if cert else None,
        "kl_to_gibbs": cert.kl_to_gibbs if cert else None,
        "kl_upper": cert.kl_upper if cert else None,
        "kl_from_gibbs": cert.kl_from_gibbs if cert else None,
        "ess": cert.ess if cert else None,
        "pareto_k": cert.pareto_k if cert else None,
        "certificate_reliable": cert.reliable if cert else None,
        "constraints_met": result.constraints_met,
        "converged": result.converged,
        "steps": int(result.history["step"].max()),
        "seconds": result.seconds,
    }


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the solves and write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="gumbel-mog")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="spec names (default: all in constraints/)")
    parser.add_argument("--out", type=Path, help="CSV path (default: benchmarks/solve_specs-<base>.csv)")
    args = parser.parse_args(argv)
    specs = args.only or sorted(p.stem for p in (ROOT / "constraints").glob("*.py"))
    jobs = [(s, args.base, seed) for seed in range(args.seeds) for s in specs]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = []
        for row in pool.imap_unordered(solve_one, jobs):
            rows.append(row)
            print(f"{row['spec']}: KL {row['kl']:.4f}, {row['seconds']:.0f} s", file=sys.stderr)
        pool.close()  # let the workers exit on their own (terminate() leaks a semaphore warning)
        pool.join()
    table = pd.DataFrame(rows).sort_values(["spec", "seed"]).reset_index(drop=True)
    out = args.out or Path(__file__).resolve().parent / f"solve_specs-{args.base}.csv"
    write_csv(table, out)
    print(
        f"machine: {platform.processor() or platform.machine()}, one thread per solve, {args.jobs} at a time"
    )
    print(
        "| spec | H (ref) | KL, model density | KL, nearest neighbours | D(η̂) | certified gap (k̂) "
        "| gap_upper (ESS) | kl_upper | worst constraint | converged | steps | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table.to_dict("records"):
        worst = (
            f"{r['worst_constraint']} {r['worst_value']:.4f} ({r['worst_target']:g}; {r['worst_in_percent']:.2f}%)"
            if r["worst_constraint"]
            else "-"
        )
        flag = "" if r["certificate_reliable"] else ", unreliable"
        print(
            f"| {r['spec']} | {r['entropy']:.4f} ({r['reference_entropy']:.4f}) | {r['kl']:.4f} | {r['kl_knn']:.4f} "
            f"| {r['dual_bound']:.4f} | {r['gap']:.4f} ± {r['gap_stderr']:.4f} ({r['pareto_k']:.2f}{flag}) "
            f"| {r['gap_upper']:.4f} ({100 * r['ess']:.0f}%) | {r['kl_upper']:.4f} "
            f"| {worst} | {'yes' if r['converged'] else 'no'} | {r['steps']} | {r['seconds']:.0f} |"
        )
    print(f"wrote {out}")
    return table


if __name__ == "__main__":
    main()
