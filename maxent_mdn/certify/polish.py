r"""Polishing the natural parameters: damped Newton steps on the importance-sampled dual.

The solver's multipliers give :math:`\eta` only to the accuracy of the penalty
method; the certificate is tightest at the minimizer of the dual, so
:func:`polish` refines :math:`\eta` on one batch of the flow's draws before
:func:`~maxent_mdn.certify.dual.certify` measures :math:`D(\hat\eta)` on another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..problem.spec import MaxEntProblem
from .dual import admissible, dual_terms
from .weights import ess_fraction

__all__ = ["Polish", "polish"]


@dataclass
class Polish:
    """The outcome of :func:`polish`: :math:`\\hat\\eta`, its standard errors (infinite if no step was taken), and why it stopped."""

    eta: Tensor
    eta_stderr: Tensor
    steps: int
    ess: float
    stopped: str


def polish(
    problem: MaxEntProblem,
    eta: Tensor,
    x: Tensor,
    log_q: Tensor,
    max_steps: int = 20,
    ess_floor: float = 0.05,
) -> Polish:
    r"""Damped Newton steps on the empirical dual :math:`D_n(\eta) = \log \frac1n \sum_i e^{\eta^\top T_i - \log q_i} - \eta^\top b`.

    :math:`\nabla D = \mathbb E_{p_\eta}[T] - b` and
    :math:`\nabla^2 D = \operatorname{Cov}_{p_\eta}(T)`, both from the
    self-normalized weights :math:`\propto e^{\eta^\top T_i - \log q_i}` on the
    fixed draws ``x`` (so :math:`D_n` is convex and each step is checked to
    decrease it; halved up to 20 times otherwise). Stops when the step is
    within its standard error (``"converged"``), when the ESS of the weights
    falls below ``ess_floor`` (``"ess"``: the flow is too far from
    :math:`p_\eta` to say more), or after ``max_steps``. The standard errors
    of :math:`\hat\eta` are :math:`\sqrt{\operatorname{diag}(\operatorname{Cov}^{-1}) / \mathrm{ESS}}`.
    Evaluate :math:`D(\hat\eta)` on *other* draws (:func:`certify`).
    """
    stats, neg_log_q = dual_terms(problem, x, log_q)
    b = problem.targets
    eta = admissible(problem, torch.as_tensor(eta, dtype=torch.float64))
    n = stats.shape[0]

    def dual(e: Tensor) -> float:
        w = stats @ e + neg_log_q
        return float(torch.logsumexp(w, 0) - math.log(n) - e @ b)

    def stderr(cov_inv: Tensor, ess: float) -> Tensor:
        return (cov_inv.diagonal().clamp_min(0) / max(ess * n, 1.0)).sqrt()

    stopped, steps = "max_steps", 0
    cov_inv = torch.full((len(b), len(b)), math.inf, dtype=torch.float64)  # no step taken: no error bar
    ess = 0.0
    for steps in range(1, max_steps + 1):  # noqa: B007 - the count is reported
        w = stats @ eta + neg_log_q
        p = torch.softmax(w, 0)
        ess = ess_fraction(p)
        if ess < ess_floor:
            stopped = "ess"
            break
        mean = p @ stats
        centred = stats - mean
        cov = (p[:, None] * centred).T @ centred
        cov_inv = torch.linalg.pinv(cov, hermitian=True)
        step = cov_inv @ (mean - b)
        se = stderr(cov_inv, ess)
        current, t = dual(eta), 1.0
        for _ in range(20):
            candidate = admissible(problem, eta - t * step)
            if dual(candidate) <= current:
                break
            t *= 0.5
        eta = candidate
        if bool(((t * step).abs() <= se).all()):
            stopped = "converged"
            break
    return Polish(eta=eta, eta_stderr=stderr(cov_inv, ess), steps=steps, ess=ess, stopped=stopped)
