r"""Is there any distribution with these expectations? Checks run before training.

Two layers:

1. **Named checks** for the convenience constraints, whose statistics are
   known, with messages that say which law is broken: a covariance or
   second-moment matrix that is not positive definite, a mean outside the
   support, Jensen's inequality :math:`\mathbb E[\log x] < \log \mathbb E[x]`
   on :class:`Positive` and :math:`\sum_i e^{\mathbb E[\log x_i]} < 1` on the
   simplex.
2. **The moment-cone test** for any statistic: targets :math:`b` are
   reachable by a distribution on the support only if :math:`b` lies in the
   convex hull of :math:`\{T(x)\}` (:math:`\le`/:math:`\ge` rows: of its
   upward/downward closure). That is a linear program over weights on a grid
   of the support (log-spaced and evenly spaced values), run for one or two
   free coordinates; in more dimensions sampled points cover the cone too
   thinly for a "no" to be trusted, so only the named checks run. For powers of :math:`x` it is the
   Hankel condition (e.g. :math:`\mathbb E[x^4] \ge \mathbb E[x^2]^2`). The
   points reach :math:`|x| \le 10 \max(1, \max_j |b_j|)`, so a target that only
   a distribution with mass beyond that reaches would be reported as
   infeasible; no sensible moment problem needs that.

A target *on* the boundary of the hull (e.g. :math:`\mathbb E[x^4] = \mathbb E[x^2]^2`,
met only by two-point laws) passes the test, but has no density: the solver
will then not converge and says so.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import linprog

from .constraints import Covariance, LogMean, Mean, SecondMoment
from .spec import MaxEntProblem, SpecError
from .support import Interval, Positive, Simplex

__all__ = ["InfeasibleError", "check_feasible"]


class InfeasibleError(SpecError):
    """No distribution on the support satisfies the constraints; the message says which law is broken."""


def _named_checks(problem: MaxEntProblem) -> None:
    support = problem.support
    means: dict[int, float] = {}
    for c in problem.constraints:
        if c.relation != "==":
            continue
        if isinstance(c, Covariance | SecondMoment) and getattr(c, "matrix", None) is not None:
            low = float(torch.linalg.eigvalsh(c.matrix).min())
            if low <= 0:
                raise InfeasibleError(
                    f"constraint {c.name!r}: the {type(c).__name__.lower()} matrix target is not positive "
                    f"definite (smallest eigenvalue {low:.4g}); no distribution with a density has it"
                )
        if isinstance(c, SecondMoment) and c.matrix is None and (c.target <= 0).any():
            raise InfeasibleError(f"constraint {c.name!r}: a second moment E[x_i^2] must be positive")
        if isinstance(c, Mean):
            dims = c.dims if c.dims is not None else list(range(problem.dim))
            means.update(zip(dims, c.target.tolist(), strict=False))
    for d, m in means.items():
        if isinstance(support, Positive) and m <= 0:
            raise InfeasibleError(f"E[x_{d}] = {m:g}, but the support is Positive(): a mean must be > 0")
        if isinstance(support, Interval) and not support.low < m < support.high:
            raise InfeasibleError(f"E[x_{d}] = {m:g} lies outside the support {support!r}")
        if isinstance(support, Simplex) and not 0 < m < 1:
            raise InfeasibleError(f"E[x_{d}] = {m:g}, but simplex coordinates lie in (0, 1)")
    for c in problem.constraints:
        if not isinstance(c, LogMean) or c.relation != "==":
            continue
        b = c.target.tolist()
        if isinstance(support, Simplex) and len(b) == problem.dim:
            total = sum(math.exp(v) for v in b)
            if total >= 1:
                raise InfeasibleError(
                    f"constraint {c.name!r}: sum_i exp(E[log x_i]) = {total:.4g} >= 1, but Jensen's inequality "
                    "gives E[log x_i] < log E[x_i] and the E[x_i] sum to 1"
                )
        if isinstance(support, Positive):
            for d, v in enumerate(b):
                if d in means and v >= math.log(means[d]):
                    raise InfeasibleError(
                        f"constraint {c.name!r}: E[log x_{d}] = {v:g} >= log E[x_{d}] = {math.log(means[d]):.4g}, "
                        "which Jensen's inequality forbids"
                    )


def _axis(reach: float, positive: bool, linear: int) -> np.ndarray:
    """Log-spaced magnitudes (small and large scales) plus ``linear`` evenly spaced ones (kinks, e.g. strikes)."""
    mags = np.concatenate([[0.0], np.logspace(-12 if positive else -4, math.log10(reach), 80)])
    mags = np.unique(np.concatenate([mags, np.linspace(0.0, reach, linear)]))
    return mags[1:] if positive else np.concatenate([-mags[:0:-1], mags])


def _support_points(problem: MaxEntProblem, reach: float) -> np.ndarray:
    """A grid over the support (one or two free coordinates), in the problem's coordinates (float64)."""
    support, dim = problem.support, problem.dim
    free = support.flow_dim(dim)
    if isinstance(support, Simplex):
        u = np.concatenate(
            [np.logspace(-12, -1, 40), np.linspace(0.1, 0.9, 41), 1 - np.logspace(-1, -12, 40)]
        )
        axes = np.meshgrid(*([u] * free), indexing="ij")
        head = np.stack([a.ravel() for a in axes], -1)
        head = head[head.sum(-1) < 1 - 1e-12]
        return np.concatenate([head, 1 - head.sum(-1, keepdims=True)], -1)
    if isinstance(support, Interval):
        u = np.concatenate(
            [np.logspace(-12, -1, 40), np.linspace(0.1, 0.9, 81), 1 - np.logspace(-1, -12, 40)]
        )
        axis = support.low + (support.high - support.low) * u
    else:
        axis = _axis(reach, positive=isinstance(support, Positive), linear=2001 if dim == 1 else 21)
    mesh = np.meshgrid(*([axis] * dim), indexing="ij")
    return np.stack([m.ravel() for m in mesh], -1)


def _hull_feasible(stats: np.ndarray, targets: np.ndarray, relations: list[str], rows: list[int]) -> bool:
    """Whether weights w >= 0, sum w = 1 meet the chosen rows (equalities and inequalities)."""
    diff = stats[:, rows] - targets[rows]
    scale = np.maximum(np.median(np.abs(diff), axis=0), 1e-12)
    a = (diff / scale).T
    rel = [relations[j] for j in rows]
    eq = [i for i, r in enumerate(rel) if r == "=="]
    le = [i for i, r in enumerate(rel) if r == "<="]
    ge = [i for i, r in enumerate(rel) if r == ">="]
    a_eq = np.vstack([a[eq], np.ones((1, a.shape[1]))])
    b_eq = np.concatenate([np.zeros(len(eq)), [1.0]])
    a_ub = np.vstack([a[le], -a[ge]]) if le or ge else None
    b_ub = np.zeros(len(le) + len(ge)) if le or ge else None
    res = linprog(
        np.zeros(a.shape[1]), A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs"
    )
    return res.status != 2  # 2: infeasible


def check_feasible(problem: MaxEntProblem) -> None:
    """Raise :class:`InfeasibleError` if no distribution on the support meets the constraints.

    Example:
        >>> from maxent_mdn import Expectation, Real
        >>> bad = MaxEntProblem(1, [Expectation(lambda x: x[..., 0] ** 2, 1.0, name="m2"),
        ...                         Expectation(lambda x: x[..., 0] ** 4, 0.5, name="m4")], Real())
        >>> check_feasible(bad)
        Traceback (most recent call last):
        ...
        maxent_mdn.problem.feasibility.InfeasibleError: no distribution on Real() has these expectations ...
    """
    _named_checks(problem)
    if not problem.rows or problem.support.flow_dim(problem.dim) > 2:
        return  # in more dimensions sampled points cover the moment cone too thinly to trust a "no"
    targets = problem.targets.numpy()
    reach = 10.0 * max(1.0, float(np.abs(targets).max()))
    pts = torch.from_numpy(_support_points(problem, reach))
    with torch.no_grad():
        stats = problem.statistics(pts).double().numpy()
    stats = stats[np.isfinite(stats).all(-1)]
    rows = list(range(len(targets)))
    if len(stats) == 0 or _hull_feasible(stats, targets, problem.relations, rows):
        return
    # name the constraints involved: those whose removal makes the rest feasible
    involved = []
    for c in problem.constraints:
        keep = [j for j, (name, _) in enumerate(problem.rows) if name != c.name]
        if not keep or _hull_feasible(stats, targets, problem.relations, keep):
            involved.append(c.name)
    which = f" (the conflict involves {', '.join(repr(n) for n in involved)})" if involved else ""
    raise InfeasibleError(
        f"no distribution on {problem.support!r} has these expectations{which}: the targets lie outside the "
        f"convex hull of T(x) over {len(stats)} points of the support. For powers of x this is a broken moment "
        "inequality such as E[x^4] >= E[x^2]^2 (a Hankel matrix that is not positive semidefinite)"
    )
