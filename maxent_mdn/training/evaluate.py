r"""Measuring a trained flow: entropy, constraint values, and distance to the exact answer.

* Entropy :math:`\hat H = -\overline{\log \hat q(x)}` from a large sample, with
  the base density from a large *independent* nested batch for the Gumbel-MoG
  base (unbiased inside the log; :math:`O(1/M)` Jensen bias).
* :math:`\mathrm{KL}(q\,\|\,p^*) = \mathbb E_q[\log q - \log p^*]`, estimated
  twice: with the model's own density, and independently of it with the
  Kozachenko–Leonenko nearest-neighbour entropy,
  :math:`\mathrm{KL} = -H_{kNN}(q) - \mathbb E_q[\log p^*]`, so that a biased
  density estimator cannot pass a test on its own.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from scipy import special
from scipy.spatial import cKDTree
from torch import Tensor

from ..model import MaxEntModel
from ..objective.report import row_table
from ..problem.spec import MaxEntProblem
from ..reference import Reference

__all__ = ["Evaluation", "constraint_table", "evaluate", "knn_entropy", "sample_many", "sample_with_log_prob"]


#: draws of the final constraint table (its standard errors well below a 1% tolerance)
CONSTRAINT_SAMPLES = 200_000


def sample_many(flow: MaxEntModel, n: int, chunk: int = 16384) -> Tensor:
    """``n`` samples without gradients as float64 on the CPU, drawn in chunks to bound memory."""
    with torch.no_grad():
        return torch.cat([flow.sample((min(chunk, n - i),)).double().cpu() for i in range(0, n, chunk)])


def sample_with_log_prob(
    flow: MaxEntModel, n: int, num_nested: int = 8192, chunk: int = 4096
) -> tuple[Tensor, Tensor]:
    """``n`` samples and their log-density (independent nested estimate for a Gumbel-MoG base), in chunks."""
    xs, lqs = [], []
    kwargs = flow.evaluation_kwargs(num_nested)
    with torch.no_grad():
        for start in range(0, n, chunk):
            x, log_q = flow.rsample_and_log_prob(min(chunk, n - start), **kwargs)
            xs.append(x.double().cpu())
            lqs.append(log_q.double().cpu())
    return torch.cat(xs), torch.cat(lqs)


def knn_entropy(x: np.ndarray, k: int = 3) -> float:
    r"""Kozachenko–Leonenko estimate :math:`\psi(N) - \psi(k) + \log V_d + \frac dN \sum_i \log \varepsilon_i`.

    :math:`\varepsilon_i` is the distance from :math:`x_i` to its :math:`k`-th
    neighbour and :math:`V_d` the volume of the unit ball in :math:`\mathbb R^d`.
    Each point is first spread uniformly over its float32 rounding cell, so
    ties between float32 samples do not enter as :math:`\log 0`.

    Example:
        >>> x = np.random.default_rng(0).standard_normal((20000, 1))
        >>> bool(abs(knn_entropy(x) - 0.5 * np.log(2 * np.pi * np.e)) < 0.01)
        True
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    # samples drawn in float32 repeat exactly now and then (200,000 draws in 1D hit ties); a zero
    # neighbour distance would enter as log(tiny). Spread each point over its float32 rounding cell.
    ulp = np.spacing(np.abs(x).astype(np.float32)).astype(np.float64)
    x = x + ulp * (np.random.default_rng(0).random(x.shape) - 0.5)
    dist, _ = cKDTree(x).query(x, k=k + 1)
    eps = np.maximum(dist[:, -1], np.finfo(np.float64).tiny)
    log_ball = 0.5 * d * math.log(math.pi) - special.gammaln(0.5 * d + 1)
    return float(special.digamma(n) - special.digamma(k) + log_ball + d * np.mean(np.log(eps)))


def constraint_table(problem: MaxEntProblem, x: Tensor) -> pd.DataFrame:
    """Per scalar constraint row: row label, name, index, relation, target, value, stderr, violation, within 1%.

    ``within_1pct``: the violation is at most 1% of the row's scale (its target, or the
    statistic's spread for a target smaller than that) or within 3 standard errors of zero
    (:mod:`~maxent_mdn.objective.tolerance`).
    """
    stats_ = problem.statistics(x.double()).numpy()
    value, spread = stats_.mean(0), stats_.std(0, ddof=1)
    return row_table(problem, value, spread, spread / math.sqrt(stats_.shape[0]))


class Evaluation(dict):
    """Measurements of one trained flow (a dict, JSON-ready except ``constraints`` and ``draws``)."""


def evaluate(
    flow: MaxEntModel,
    problem: MaxEntProblem,
    reference: Reference | None,
    n: int = 20000,
    num_nested: int = 8192,
    constraint_samples: int = CONSTRAINT_SAMPLES,
) -> Evaluation:
    """Entropy with its standard error, constraint table, and KL to ``reference`` (model-based and kNN).

    Entropy and KL use ``n`` samples with densities; the constraint table uses
    ``constraint_samples`` samples, so that its standard errors are well below a
    1% tolerance: the first of those ``n`` draws when there are enough (the
    default: both 200,000), so that the table is measured on the draws the
    solver's stop check saw (:func:`~maxent_mdn.training.verdict.certified_stop`),
    and plain samples added otherwise.
    """
    x, log_q = sample_with_log_prob(flow, n, num_nested)
    h = -log_q
    extra = max(constraint_samples - n, 0)
    x_many = x[:constraint_samples] if not extra else torch.cat([x, sample_many(flow, extra)])
    out = Evaluation(
        entropy=float(h.mean()),
        entropy_stderr=float(h.std() / math.sqrt(n)),
        constraints=constraint_table(problem, x_many),
        reference_entropy=None,
        kl_to_reference=None,
        kl_stderr=None,
        kl_knn=None,
        entropy_knn=None,
    )
    out["draws"] = (x, log_q)  # for the dual certificate (not JSON)
    out["max_abs_violation"] = float(out["constraints"]["violation"].max()) if problem.rows else 0.0
    free = problem.support.flow_dim(problem.dim)
    coords = x[:, :free].numpy()  # simplex: the density is w.r.t. the first D-1 coordinates
    out["entropy_knn"] = knn_entropy(coords) if free <= 4 else None
    if reference is not None:
        log_p = reference.log_prob(x)
        if not torch.isfinite(log_p).all():
            bad = int((~torch.isfinite(log_p)).sum())
            raise ValueError(f"{bad} of {n} flow samples fall outside the reference's support")
        diff = (log_q - log_p).numpy()
        out["reference_entropy"] = float(reference.entropy)
        out["kl_to_reference"] = float(diff.mean())
        out["kl_stderr"] = float(diff.std(ddof=1) / math.sqrt(n))
        if out["entropy_knn"] is not None:
            out["kl_knn"] = float(-out["entropy_knn"] - log_p.mean())
    return out
