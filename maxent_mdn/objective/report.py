"""The per-row report of a solution: target, value, violation, tolerance, and whether the row is met."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..problem.spec import MaxEntProblem
from .lagrangian import AugmentedLagrangian
from .tolerance import met, row_tolerance

__all__ = ["row_table"]


def row_table(
    problem: MaxEntProblem, value: np.ndarray, spread: np.ndarray, stderr: np.ndarray
) -> pd.DataFrame:
    """Per scalar row: label, name, index, relation, target, value, stderr, violation, tolerance, within 1%.

    Args:
        problem: the rows' targets and relations.
        value: the model's expectations :math:`E_q[T]`, ``(M,)``.
        spread: the statistics' standard deviations under the model, ``(M,)``.
        stderr: the standard errors of ``value`` (zeros for an exact expectation).

    The violation is :math:`|E T - b|` for an equality and the excess on the wrong side for an
    inequality; ``within_1pct`` is :func:`met` at ``rtol = 0.01``.
    """
    target, rel = problem.targets.numpy(), problem.relations
    alm = AugmentedLagrangian(problem.targets, rel)  # the violation as the convergence test measures it
    violation = alm.infeasibility(alm.violation(torch.as_tensor(value, dtype=torch.float64))).abs().numpy()
    tolerance = row_tolerance(target, spread, rtol=0.01)
    return pd.DataFrame(
        {
            "row": problem.labels,
            "name": [r[0] for r in problem.rows],
            "index": [r[1] for r in problem.rows],
            "relation": rel,
            "target": target,
            "value": value,
            "stderr": stderr,
            "violation": violation,
            "tolerance": tolerance,
            "within_1pct": met(violation, stderr, tolerance),
        }
    )
