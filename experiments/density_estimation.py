"""Density estimation on the five 2D toys: Gaussian-base flow, Gumbel-MoG flow, exact-MoG flow and RAD.

Every model gets the same budget (3000 steps, batch 512, Adam 2e-3 with cosine
decay, validation early stopping) and a comparable parameter count
(:func:`maxent_mdn.training.fit.make_density_model`); none is tuned on its own.
One row per (dataset, model, seed) goes to ``experiments/results/density.csv``;
the same runs are ``maxent-mdn reproduce --only density``.

Run: ``python experiments/density_estimation.py [--seeds 1] [--jobs 2]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from maxent_mdn.experiments import reproduce

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> None:
    """Run the fits and print the table of mean test log-likelihoods."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="300 steps per fit (a smoke test)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = reproduce(["density"], quick=args.quick, seeds=args.seeds, jobs=args.jobs, out=RESULTS)["density"]
    mean = table.pivot_table(index="case", columns="base", values="test_ll", aggfunc="mean")
    stderr = table.pivot_table(index="case", columns="base", values="test_ll_stderr", aggfunc="mean")
    print((mean.round(3).astype(str) + " ± " + stderr.round(3).astype(str)).to_string())
    print(f"{len(table)} fits in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
