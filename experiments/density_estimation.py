"""Density estimation on the five 2D toys: Gaussian-base flow, Gumbel-MoG flow, exact-MoG flow and RAD.

Every model gets the same budget (steps, batch, learning rate, early stopping)
and a comparable parameter count (:func:`maxent_mdn.training.fit.make_density_model`);
none is tuned on its own. One row per (dataset, model, seed) goes to
``experiments/results/density_estimation.csv``.

Run: ``python experiments/density_estimation.py [--steps 2000] [--seeds 1] [--jobs 2]``
(about 12 minutes on 2 cores with the defaults).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(job: tuple[str, str, int, int]) -> dict[str, object]:
    """Fit one model to one dataset with one seed (one thread); returns the CSV row."""
    dataset, model_name, seed, steps = job
    import torch

    from maxent_mdn.datasets import load_dataset
    from maxent_mdn.training.fit import fit, make_density_model

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data = load_dataset(dataset, seed=seed)
    model = make_density_model(model_name, data.dim)
    result = fit(model, data, steps=steps, seed=seed, progress=False)
    return {
        "experiment": "density_estimation",
        "dataset": dataset,
        "model": model_name,
        "seed": seed,
        **result.summary(),
    }


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the grid of fits (in parallel over ``--jobs`` processes) and write the CSV."""
    from maxent_mdn.datasets import DATASETS
    from maxent_mdn.training.fit import MODELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "density_estimation.csv")
    args = parser.parse_args(argv)
    jobs = [(d, m, s, args.steps) for s in range(args.seeds) for d in DATASETS for m in MODELS]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = []
        for row in pool.imap_unordered(run_one, jobs):
            rows.append(row)
            print(
                f"[{len(rows)}/{len(jobs)}] {row['dataset']:12s} {row['model']:10s} seed {row['seed']}: "
                f"test LL {row['test_ll']:.3f} ± {row['test_ll_stderr']:.3f} ({row['seconds']:.0f} s)",
                file=sys.stderr,
            )
    table = pd.DataFrame(rows).sort_values(["dataset", "model", "seed"]).reset_index(drop=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    pivot = table.pivot_table(index="dataset", columns="model", values="test_ll", aggfunc="mean")
    print(pivot.round(3).to_string())
    print(f"{len(table)} runs in {time.perf_counter() - start:.0f} s; wrote {args.out}")
    return table


if __name__ == "__main__":
    main()
