r"""Maximum-entropy answers on a grid, for problems of one or two free coordinates.

The answer is :math:`p^*(x) \propto \exp(\eta^\top T(x))`; :math:`\eta` minimizes
the convex dual

.. math::

    \min_\eta \; \log \sum_{g} \exp(\eta^\top T(x_g))\,\Delta - \eta^\top b,
    \qquad \eta_j \le 0 \text{ for } \le\text{-rows}, \; \eta_j \ge 0 \text{ for } \ge\text{-rows},

over the midpoints :math:`x_g` of a grid of cells of volume :math:`\Delta`. It is
solved with cvxpy (``log_sum_exp``) on standardized statistics (at most
:data:`CVXPY_POINTS` of the grid's points, every k-th), then polished in
float64 with L-BFGS-B and Newton steps on every point from the cvxpy solution. :func:`grid_primal_entropy`
solves the primal :math:`\max \sum_g \operatorname{entr}(p_g)` s.t.
:math:`\sum p = 1`, :math:`\sum_g p_g T(x_g) \;\mathrm{rel}\; b` for cross-checks.
For unbounded supports the box grows until the density at its edges is
negligible (:math:`< 10^{-10}` of the peak).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd
import torch
from scipy import optimize, special
from torch import Tensor

from ..objective.report import row_table
from ..problem.spec import MaxEntProblem
from ..problem.support import Interval, Positive, Simplex
from .closed_form import Reference

__all__ = ["GridReference", "grid_primal_entropy", "grid_reference"]

_DEFAULT_POINTS = {1: 4001, 2: 241}
_EDGE_TOLERANCE = 1e-10


def _default_box(problem: MaxEntProblem) -> list[tuple[float, float]]:
    support, free = problem.support, problem.support.flow_dim(problem.dim)
    if problem.grid_box is not None:
        if len(problem.grid_box) != free:
            raise ValueError(f"grid_box needs {free} (low, high) pairs, got {len(problem.grid_box)}")
        return list(problem.grid_box)
    if isinstance(support, Interval):
        return [(support.low, support.high)] * free
    if isinstance(support, Simplex):
        return [(0.0, 1.0)] * free
    if isinstance(support, Positive):
        return [(0.0, 16.0)] * free
    return [(-8.0, 8.0)] * free


class _Grid:
    """Cell midpoints of a box (masked to the simplex when needed), in free and full coordinates."""

    def __init__(self, problem: MaxEntProblem, box: list[tuple[float, float]], points: int) -> None:
        axes = [np.linspace(lo, hi, points + 1) for lo, hi in box]
        mids = [0.5 * (a[1:] + a[:-1]) for a in axes]
        self.axes_mid = mids
        self.cell = float(np.prod([a[1] - a[0] for a in axes]))
        free = np.stack(np.meshgrid(*mids, indexing="ij"), -1).reshape(-1, len(box))
        if isinstance(problem.support, Simplex):
            keep = free.sum(-1) < 1.0
            free = free[keep]
            full = np.concatenate([free, 1.0 - free.sum(-1, keepdims=True)], -1)
        else:
            keep = np.ones(free.shape[0], dtype=bool)
            full = free
        self.keep, self.free, self.full = keep, free, full
        self.shape = tuple(len(m) for m in mids)
        stats = problem.statistics(torch.from_numpy(full)).numpy()
        if not np.isfinite(stats).all():
            raise ValueError(f"problem {problem.name!r}: a constraint statistic is not finite on the grid")
        self.stats = stats


#: at most this many grid points go to cvxpy; L-BFGS-B and Newton then solve the dual on every point
CVXPY_POINTS = 4096


def _cvxpy_dual(a: np.ndarray, b: np.ndarray, relations: list[str], log_cell: float) -> np.ndarray:
    """The standardized dual's minimizer by cvxpy (``log_sum_exp``); ``ValueError`` when it finds none."""
    import cvxpy as cp

    eta = cp.Variable(a.shape[1])
    cons = [eta[j] <= 0 for j, r in enumerate(relations) if r == "<="]
    cons += [eta[j] >= 0 for j, r in enumerate(relations) if r == ">="]
    problem = cp.Problem(cp.Minimize(cp.log_sum_exp(a @ eta) + log_cell - b @ eta), cons)
    try:
        problem.solve()
    except cp.error.SolverError as err:
        raise ValueError(f"the grid reference solver failed: {err}") from None
    if eta.value is None or problem.status not in ("optimal", "optimal_inaccurate"):
        raise ValueError(
            f"the grid reference solver found no solution (status {problem.status}): "
            "the constraints may be infeasible on the support"
        )
    return np.asarray(eta.value, dtype=np.float64)


def _solve_dual(stats: np.ndarray, targets: np.ndarray, relations: list[str], log_cell: float) -> np.ndarray:
    """The dual's minimizer: cvxpy's answer, polished by L-BFGS-B and Newton steps on the whole grid.

    cvxpy sees at most :data:`CVXPY_POINTS` points, every k-th of the grid (a coarser grid:
    quartic_2d's 58,081 exponential cones took it 11.1 s, every 15th 0.4 s); the polish then
    finds the whole grid's minimizer from there, the same as from cvxpy's answer on every point
    (eta to 2e-10 relative on quartic_2d, 2e-13 on gaussian_2d). Where the subsample has no
    answer (its points span less, so a target near the edge of what the support allows may fall
    outside), cvxpy solves the whole grid, and its verdict stands.
    """
    centre = stats.mean(0)
    scale = stats.std(0)
    scale[scale == 0] = 1.0
    a = (stats - centre) / scale
    b = (targets - centre) / scale
    stride = -(-a.shape[0] // CVXPY_POINTS)
    start = None
    if stride > 1:
        with contextlib.suppress(ValueError):  # no answer on the subsample: the whole grid decides
            start = _cvxpy_dual(a[::stride], b, relations, log_cell)
    if start is None:
        start = _cvxpy_dual(a, b, relations, log_cell)
    bounds = [(None, 0.0) if r == "<=" else (0.0, None) if r == ">=" else (None, None) for r in relations]

    def dual(x: np.ndarray) -> tuple[float, np.ndarray]:
        z = a @ x
        lse = special.logsumexp(z)
        p = np.exp(z - lse)
        return lse - b @ x, p @ a - b

    res = optimize.minimize(
        dual,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 5000},
    )
    return _newton_polish(a, b, res.x, bounds) / scale


def _newton_polish(
    a: np.ndarray, b: np.ndarray, x: np.ndarray, bounds: list[tuple[float | None, float | None]]
) -> np.ndarray:
    r"""Projected Newton steps on the dual from L-BFGS-B's answer.

    L-BFGS-B stops on a relative decrease of the dual of :math:`10^{-15}`; along the
    dual's flattest direction (power moments are nearly collinear, Hessian eigenvalues
    down to :math:`10^{-6}`) that leaves :math:`\eta` off by :math:`10^{-2}`, and
    *where* it stops depends on rounding in the statistics, so on the CPU's kernels.
    Newton's step :math:`-H^{-1}\nabla` with :math:`H = \operatorname{Cov}_p(a)`
    removes that error in a few steps. Rows held at their bound (``<=``/``>=`` with
    :math:`\eta_j = 0` and the gradient pushing outward) stay fixed.
    """
    low = np.array([-np.inf if lo is None else lo for lo, _ in bounds])
    high = np.array([np.inf if hi is None else hi for _, hi in bounds])

    def value(x: np.ndarray) -> float:
        return float(special.logsumexp(a @ x) - b @ x)

    f = value(x)
    for _ in range(50):
        z = a @ x
        p = np.exp(z - special.logsumexp(z))
        mean = p @ a
        grad = mean - b
        free = ~(((x <= low) & (grad > 0)) | ((x >= high) & (grad < 0)))
        if not free.any() or np.abs(grad[free]).max() < 1e-14:
            break
        hess = (a * p[:, None]).T @ a - np.outer(mean, mean)
        step = np.zeros_like(x)
        step[free] = -np.linalg.lstsq(hess[np.ix_(free, free)], grad[free], rcond=1e-14)[0]
        for t in 0.5 ** np.arange(30):
            trial = np.clip(x + t * step, low, high)
            f_trial = value(trial)
            if f_trial <= f:
                break
        else:
            break
        if np.array_equal(trial, x):
            break
        x, f = trial, f_trial
    return x


class GridReference(Reference):
    r"""Grid solution :math:`p^*(x) = \exp(\eta^\top T(x) - \log Z)` on the support.

    Attributes:
        eta: natural parameters, one per scalar constraint row.
        log_norm: :math:`\log Z` from the grid.
        box: the grid box of the free coordinates.
    """

    kind = "grid"

    def __init__(
        self, problem: MaxEntProblem, eta: np.ndarray, grid: _Grid, box: list[tuple[float, float]]
    ) -> None:
        self.problem, self.eta, self.box = problem, eta, box
        logits = grid.stats @ eta
        self.log_norm = float(special.logsumexp(logits) + math.log(grid.cell))
        log_p = logits - self.log_norm
        p_mass = np.exp(log_p) * grid.cell
        self._entropy = float(-(p_mass * log_p).sum())
        self.moments = p_mass @ grid.stats
        self.grid = grid
        self.grid_log_prob = log_p

    @classmethod
    def rebuild(
        cls, problem: MaxEntProblem, eta: np.ndarray, box: list[tuple[float, float]], points: int
    ) -> GridReference:
        """The solution from stored parameters (``eta``, ``box``, ``points`` of a ``result.json``), no solve.

        Example:
            >>> from maxent_mdn import MaxEntProblem, Mean
            >>> from maxent_mdn.problem import Interval
            >>> problem = MaxEntProblem(1, [Mean([0.3])], support=Interval(0.0, 1.0))
            >>> ref = grid_reference(problem)
            >>> again = GridReference.rebuild(problem, ref.eta, ref.box, len(ref.grid.axes_mid[0]))
            >>> abs(again.entropy - ref.entropy) < 1e-12
            True
        """
        box = [(float(lo), float(hi)) for lo, hi in box]
        return cls(problem, np.asarray(eta, dtype=np.float64), _Grid(problem, box, int(points)), box)

    @property
    def entropy(self) -> float:
        return self._entropy

    def constraint_table(self) -> pd.DataFrame:
        """Targets against this answer's expectations on the grid (exact: no standard error).

        A row's tolerance scale is its statistic's spread under this answer (see
        :func:`~maxent_mdn.objective.report.row_table`).
        """
        mass = np.exp(self.grid_log_prob) * self.grid.cell
        spread = np.sqrt(np.maximum(mass @ self.grid.stats**2 - self.moments**2, 0.0))
        return row_table(self.problem, self.moments, spread, np.zeros_like(self.moments))

    def log_prob(self, x: Tensor) -> Tensor:
        x = x.double()
        inside = self.problem.support.contains(x)
        safe = torch.where(inside.unsqueeze(-1), x, torch.from_numpy(self.grid.full[:1]).expand_as(x))
        out = self.problem.statistics(safe) @ torch.from_numpy(self.eta) - self.log_norm
        return torch.where(inside, out, torch.full_like(out, -math.inf))

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """Draws of the grid distribution: a cell by its mass, then a uniform point in it (kept in the support)."""
        rng = np.random.default_rng(seed)
        prob = np.exp(self.grid_log_prob - self.grid_log_prob.max())
        cells = rng.choice(len(prob), size=n, p=prob / prob.sum())
        widths = np.array(
            [(hi - lo) / len(m) for (lo, hi), m in zip(self.box, self.grid.axes_mid, strict=True)]
        )
        free = self.grid.free[cells] + widths * (rng.random((n, len(widths))) - 0.5)
        if isinstance(self.problem.support, Simplex):
            outside = free.sum(-1) >= 1.0
            free[outside] = self.grid.free[cells[outside]]  # a jitter across the face: the cell's midpoint
            return torch.from_numpy(np.concatenate([free, 1.0 - free.sum(-1, keepdims=True)], -1))
        return torch.from_numpy(free)

    @property
    def natural_params(self) -> dict[str, list]:
        return {"eta": self.eta.tolist(), "log_norm": [self.log_norm], "box": [list(b) for b in self.box]}


def _edge_mass_ratio(problem: MaxEntProblem, grid: _Grid, log_p: np.ndarray) -> float:
    """Largest density on an unbounded side of the box, relative to the peak."""
    if isinstance(problem.support, Interval | Simplex) or problem.grid_box is not None:
        return 0.0
    dens = np.full(grid.keep.shape, -np.inf)
    dens[grid.keep] = log_p
    dens = dens.reshape(grid.shape)
    peak = dens.max()
    worst = -np.inf
    for axis in range(dens.ndim):
        sides = [-1] if isinstance(problem.support, Positive) else [0, -1]
        for side in sides:
            worst = max(worst, np.take(dens, side, axis=axis).max())
    return float(np.exp(worst - peak))


def grid_reference(problem: MaxEntProblem, points: int | None = None) -> GridReference:
    """Solve ``problem`` on a grid (one or two free coordinates), widening unbounded boxes as needed."""
    free = problem.support.flow_dim(problem.dim)
    if free > 2:
        raise ValueError(
            f"the grid reference handles at most 2 free coordinates, problem {problem.name!r} has {free}"
        )
    points = points or _DEFAULT_POINTS[free]
    box = _default_box(problem)
    targets, relations = problem.targets.numpy(), problem.relations
    for _ in range(6):
        grid = _Grid(problem, box, points)
        eta = _solve_dual(grid.stats, targets, relations, math.log(grid.cell))
        ref = GridReference(problem, eta, grid, box)
        if _edge_mass_ratio(problem, grid, ref.grid_log_prob) < _EDGE_TOLERANCE:
            return ref
        box = [(lo, 2 * hi) if isinstance(problem.support, Positive) else (2 * lo, 2 * hi) for lo, hi in box]
    raise ValueError(
        f"problem {problem.name!r}: the grid reference needs a box wider than {box}; set grid_box"
    )


def grid_primal_entropy(problem: MaxEntProblem, box: list[tuple[float, float]], points: int) -> float:
    r"""Entropy of the primal grid solution :math:`\max \sum_g \operatorname{entr}(p_g) + \log\Delta`."""
    grid = _Grid(problem, box, points)
    centre, scale = grid.stats.mean(0), grid.stats.std(0)
    scale[scale == 0] = 1.0
    a = (grid.stats - centre) / scale
    b = (problem.targets.numpy() - centre) / scale
    import cvxpy as cp

    p = cp.Variable(a.shape[0], nonneg=True)
    moments = a.T @ p
    cons = [cp.sum(p) == 1]
    for j, rel in enumerate(problem.relations):
        cons.append(
            moments[j] == b[j] if rel == "==" else moments[j] <= b[j] if rel == "<=" else moments[j] >= b[j]
        )
    prob = cp.Problem(cp.Maximize(cp.sum(cp.entr(p))), cons)
    prob.solve()
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise ValueError(f"the primal grid solver failed (status {prob.status})")
    return float(prob.value + math.log(grid.cell))
