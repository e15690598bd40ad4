r"""Where the dual polish starts: the solver's multipliers, or :math:`\eta` read off the flow's own density.

Newton's method on the importance-sampled dual (:func:`~maxent_mdn.certify.polish`)
needs a start whose weights :math:`e^{\eta^\top T - \log q}` are even enough to
estimate anything. The solver's multipliers usually are, but not always: on
``positive_inequality`` the flow ended with the inequality slack and its multiplier
at 0, so :math:`\eta = (-0.37, 0)` instead of :math:`\eta^* = (0.37, -0.46)`, an ESS of
0.2%, and a polish that could not take a step (the dual bound came out at 1.27 for
:math:`H^* = 0.92`). The flow's density itself says where :math:`\eta` is: if
:math:`q \approx p_\eta` then :math:`\log q(x) \approx \eta^\top T(x) - \log Z`, a linear
regression over the flow's draws that needs no weights. On the same flow it gave
:math:`(0.39, -0.46)` at an ESS of 99%, and the polish from there
:math:`D(\hat\eta) = 0.9246` for :math:`H^* = 0.9245`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..problem.spec import MaxEntProblem
from .dual import admissible, dual_terms
from .weights import ess_fraction

__all__ = ["fit_natural_parameters", "importance_ess", "starting_point"]


def _fit(stats: Tensor, neg_log_q: Tensor) -> Tensor:
    design = torch.cat([stats - stats.mean(0), torch.ones(stats.shape[0], 1, dtype=stats.dtype)], 1)
    return torch.linalg.lstsq(design, -neg_log_q.unsqueeze(1), driver="gelsd").solution[:-1, 0]


def _ess(eta: Tensor, stats: Tensor, neg_log_q: Tensor) -> float:
    return ess_fraction(torch.softmax(stats @ eta + neg_log_q, 0))


def fit_natural_parameters(problem: MaxEntProblem, x: Tensor, log_q: Tensor) -> Tensor:
    r"""Least squares :math:`\log q(x_i) \approx \eta^\top T(x_i) + c` over draws of :math:`q`, clipped to the admissible signs.

    Exact when :math:`q = p_\eta` (then the residuals vanish); rank-deficient
    statistics get the minimum-norm solution.

    Example:
        >>> from maxent_mdn import MaxEntProblem, Mean, Positive
        >>> x = torch.rand(1000, 1, dtype=torch.float64) * 5
        >>> eta = fit_natural_parameters(MaxEntProblem(1, [Mean(2.0)], Positive()), x, -0.5 * x[:, 0] - 0.7)
        >>> round(float(eta[0]), 6)  # the density of Exp(mean 2) on (0, 5), unnormalized: eta = -1/2
        -0.5
    """
    return admissible(problem, _fit(*dual_terms(problem, x, log_q)))


def importance_ess(problem: MaxEntProblem, eta: Tensor, x: Tensor, log_q: Tensor) -> float:
    r"""The effective sample size, as a fraction, of the weights :math:`e^{\eta^\top T - \log q}` on the draws."""
    return _ess(
        admissible(problem, torch.as_tensor(eta, dtype=torch.float64)), *dual_terms(problem, x, log_q)
    )


def starting_point(problem: MaxEntProblem, candidates: list[Tensor], x: Tensor, log_q: Tensor) -> Tensor:
    r"""The candidate :math:`\eta` whose importance weights on ``x`` have the largest ESS, together with the fit."""
    stats, neg_log_q = dual_terms(problem, x, log_q)  # the statistics once: a user's T may be costly
    options = [admissible(problem, torch.as_tensor(c, dtype=torch.float64)) for c in candidates]
    options.append(admissible(problem, _fit(stats, neg_log_q)))
    return max(options, key=lambda eta: _ess(eta, stats, neg_log_q))
