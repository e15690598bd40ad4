"""What the tail layer buys: reverse-KL fits of the default flow to known densities, with and without it.

Run: ``python benchmarks/tail_fit.py``. No constraints and no multipliers: the flow
(Gaussian base, default spline layers) is fitted directly to a density known in
closed form, so what is left is the flow's own error. Targets: the logit of a
Beta(a, 10) (exponential tails e^{a y} and e^{-10 y}) and the Dirichlet answer of
the ``scale`` experiment (``dirichlet_case``) on the simplex, through either simplex
map. KL(q || p) is the mean of log q - log p over 100,000 fresh draws (standard
error below 0.0004). One thread per fit, two fits at a time; writes
``benchmarks/tail_fit.csv``; about 5 minutes on 2 cores.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

#: (target, steps, tails, simplex_map)
FITS = [
    *((f"logit-beta-{a}", 2000, tails, "") for a in (0.5, 2.5) for tails in (False, True)),
    *(("dirichlet-10d", 3000, tails, "additive-logistic") for tails in (False, True)),
    *(("dirichlet-20d", 3000, True, m) for m in ("additive-logistic", "stick-breaking")),
]


def _fit(job: tuple[str, int, bool, str]) -> dict[str, object]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from maxent_mdn.experiments.cases import dirichlet_case
    from maxent_mdn.model import make_flow

    name, steps, tails, simplex_map = job
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if name.startswith("logit-beta"):
        a, b = float(name.rsplit("-", 1)[1]), 10.0
        norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
        flow = make_flow(1, base="gaussian", tails=tails)

        def log_p(y: torch.Tensor) -> torch.Tensor:
            return (a * F.logsigmoid(y) + b * F.logsigmoid(-y)).sum(-1) - norm

    else:
        dim = int(name.split("-")[1][:-1])
        problem = dirichlet_case(dim=dim)
        flow = make_flow(dim, base="gaussian", tails=tails, support=problem.support, simplex_map=simplex_map)
        # dirichlet_case's targets are E log x of this Dirichlet (its alpha drawn the same way)
        alpha = np.random.default_rng(0).uniform(0.5, 3.0, dim).round(3).tolist()
        log_p = torch.distributions.Dirichlet(torch.tensor(alpha)).log_prob
    opt = torch.optim.Adam(flow.parameters(), 2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    start = time.perf_counter()
    for _ in range(steps):
        x, log_q = flow.rsample_and_log_prob((1000,))
        loss = (log_q - log_p(x)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        gaps = [(lq - log_p(x)).mean() for x, lq in (flow.rsample_and_log_prob((10_000,)) for _ in range(10))]
    kl = torch.stack(gaps)
    return {
        "target": name,
        "steps": steps,
        "tails": tails,
        "simplex_map": simplex_map,
        "kl": float(kl.mean()),
        "kl_stderr": float(kl.std() / math.sqrt(len(gaps))),
        "seconds": seconds,
    }


def main() -> None:
    with mp.get_context("spawn").Pool(2) as pool:
        rows = pool.map(_fit, FITS, chunksize=1)
    table = pd.DataFrame(rows)
    table.to_csv(ROOT / "benchmarks" / "tail_fit.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
