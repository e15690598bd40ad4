r"""``train --method grid``: the exact answer of a problem with one or two free coordinates, in seconds.

The maximum-entropy density is :math:`p^*(x) = \exp(\eta^\top T(x) - \log Z(\eta))`
with :math:`\eta` minimizing the convex dual :math:`\log Z(\eta) - \eta^\top b`.
With one or two free coordinates :math:`Z` is a sum over a grid, the dual is
solved by cvxpy and polished in float64 (:func:`~maxent_mdn.reference.grid_reference`),
and no flow is needed: this is the flow-free answer a 1D user wants, and the
same solution the flow's runs are judged against.

Example:
    >>> from maxent_mdn import MaxEntProblem, Mean
    >>> from maxent_mdn.problem import Interval
    >>> problem = MaxEntProblem(1, [Mean([0.3])], support=Interval(0.0, 1.0), name="mean-0.3")
    >>> solution = solve_grid(problem)  # the truncated exponential: H = -0.252846 in closed form
    >>> round(solution.entropy, 5), bool(solution.constraints["within_1pct"].all())
    (-0.25285, True)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..problem.spec import MaxEntProblem
from .grid import GridReference, grid_reference

__all__ = ["GridSolution", "solve_grid"]


@dataclass
class GridSolution:
    """The grid answer: the Gibbs density, its entropy and natural parameters, and the constraint table.

    Attributes:
        problem: the problem solved.
        reference: the solution (``log_prob``, ``sample``, ``eta``, ``log_norm``, ``box``).
        points: grid points per free coordinate.
        seconds: wall-clock time of the solve.
        constraints: per row: target, the answer's expectation on the grid, violation, within 1%.
    """

    problem: MaxEntProblem
    reference: GridReference
    points: int
    seconds: float
    constraints: pd.DataFrame

    @property
    def entropy(self) -> float:
        """:math:`H(p^*)` on the grid (midpoint rule), nats."""
        return self.reference.entropy

    def summary(self) -> dict[str, Any]:
        """JSON-ready: what ``result.json`` of a grid run holds (``eta``/``log_partition`` as a flow run's)."""
        labels = self.problem.labels
        return {
            "method": "grid",
            "problem": self.problem.name,
            "dim": self.problem.dim,
            "entropy": self.entropy,
            "eta": dict(zip(labels, self.reference.eta.tolist(), strict=True)),
            "log_partition": self.reference.log_norm,
            "box": [list(b) for b in self.reference.box],
            "points": self.points,
            "seconds": self.seconds,
            "max_abs_violation": float(self.constraints["violation"].max()) if labels else 0.0,
            "constraints_met": bool(self.constraints["within_1pct"].all()),
            "converged": bool(self.constraints["within_1pct"].all()),
        }

    def table(self) -> str:
        """A plain-text report: entropy, time, and the constraint rows with their multipliers."""
        frame = self.constraints[["row", "relation", "target", "value", "violation", "within_1pct"]].copy()
        frame["eta"] = self.reference.eta
        head = (
            f"{self.problem.name}: grid solution, H = {self.entropy:.6f} nats "
            f"({self.points} points per coordinate, box {self.reference.box}, {self.seconds:.2f} s)"
        )
        return head + "\n" + frame.to_string(index=False, float_format=lambda v: f"{v:.6g}")


def solve_grid(problem: MaxEntProblem, points: int | None = None) -> GridSolution:
    """Solve ``problem`` exactly on a grid; ``ValueError`` if it has more than two free coordinates.

    Args:
        problem: one or two free coordinates (a 3-part simplex counts as two).
        points: grid points per coordinate (default 4001 in 1D, 241 in 2D).
    """
    free = problem.support.flow_dim(problem.dim)
    if free > 2:
        raise ValueError(
            f"--method grid solves problems with at most 2 free coordinates; {problem.name!r} has {free} "
            "(use the flow: --method flow)"
        )
    if points is not None and (not isinstance(points, int) or points < 11):
        raise ValueError(f"grid points must be an integer of at least 11, got {points!r}")
    start = time.perf_counter()
    ref = grid_reference(problem, points)
    seconds = time.perf_counter() - start
    if not math.isfinite(ref.entropy):
        raise ValueError(f"problem {problem.name!r}: the grid solution has no finite entropy")
    used = points or len(ref.grid.axes_mid[0])
    return GridSolution(problem, ref, used, seconds, ref.constraint_table())
