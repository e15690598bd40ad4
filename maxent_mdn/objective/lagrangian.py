r"""The augmented Lagrangian of Maximum Entropy Flow Networks (Loaiza-Ganem, Gao & Cunningham 2017).

For constraints written as :math:`g(\phi) \;(=, \le)\; 0` with
:math:`g_j = \pm(\mathbb E_{q_\phi}[T_j] - b_j)` (the sign turns a
:math:`\ge` row into a :math:`\le` one), the inner problem for fixed
multipliers :math:`\lambda` and penalty :math:`c` minimizes

.. math::

    L(\phi) = -\hat H(q_\phi) + \lambda_{\mathcal E}^\top g_{\mathcal E}
              + \tfrac c2\, g_{\mathcal E}^\top W g_{\mathcal E}
              + \sum_{j \in \mathcal I} \frac{s_j^2}{2c}\Big(\max\big(0, \lambda_j + c\, g_j/s_j^2\big)^2 - \lambda_j^2\Big).

MEFN uses :math:`W = I`. Here :math:`W = \Sigma_{\mathcal E}^{-1}`, the inverse
covariance of the equality statistics under the current flow (re-measured
after each inner run), and :math:`s_j` the standard deviation of inequality
row :math:`j`. This makes :math:`c` dimensionless, so one set of defaults
serves a constraint on :math:`x` and one on :math:`x^4`, and makes the
multiplier update :math:`\lambda \leftarrow \lambda + c W \hat g` a
Newton step on the dual for :math:`c = 1` (the dual's Hessian is
:math:`-\Sigma`), which matters when statistics are strongly correlated (the
Dirichlet's :math:`\log x_i`, a mean and a covariance).

The penalty's gradient :math:`c\, g \nabla g` is estimated *without bias* by
splitting each batch into independent halves: :math:`c\, g^{(2)} \nabla g^{(1)}`
with :math:`g^{(2)}` held constant (``c * (g1 * (W @ g2).detach())``); for
inequalities :math:`\max(0, \lambda + c g^{(2)}/s^2) \nabla g^{(1)}`. The entropy
and :math:`\lambda^\top g` use the whole batch.

After each inner run: :math:`\lambda \leftarrow \lambda + \min(c, \rho) W\hat g` (:math:`c\hat g_j/s_j^2`
clipped at 0 for inequalities) from fresh samples, and :math:`c \leftarrow \beta c` when the
whitened violation norm has not fallen below :math:`\gamma` times its previous value,
decided by MEFN's randomized Welch test over many batch norms (a
deterministic rule on noisy estimates inflates :math:`c` and collapses the
entropy). Convergence: every row's mean violation over many independent
batches is statistically indistinguishable from zero (one-sample t-test,
two-sided for equalities, one-sided for inequalities), Bonferroni-corrected as
in EPI (Bittner et al. 2021), whose sign test is too weak to hold a 1% tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from .._checks import positive_float
from .tolerance import row_tolerance

__all__ = ["AugmentedLagrangian"]


class AugmentedLagrangian:
    r"""Multipliers, penalty and loss of the MEFN augmented Lagrangian.

    Args:
        targets: :math:`b`, shape ``(M,)``.
        relations: ``"=="``, ``"<="`` or ``">="`` per row.
        c0: initial penalty :math:`c_0`.
        beta: penalty growth factor :math:`\beta`.
        gamma: required shrink factor :math:`\gamma` of the violation norm.
        c_max: upper bound on :math:`c`.
        dual_step: cap :math:`\rho` on the multiplier step (see :meth:`update_multipliers`).

    Example:
        >>> alm = AugmentedLagrangian(torch.tensor([1.0]), ["=="])
        >>> stats = torch.randn(100, 1) + 1.0
        >>> loss, g = alm.loss(stats, log_q=torch.zeros(100))
        >>> g.shape
        torch.Size([1])
    """

    def __init__(
        self,
        targets: Tensor,
        relations: Sequence[str],
        c0: float = 1.0,
        beta: float = 4.0,
        gamma: float = 0.25,
        c_max: float = 1e5,
        dual_step: float = 1.0,
    ) -> None:
        self.targets = targets.detach().double()
        self.sign = torch.tensor([-1.0 if r == ">=" else 1.0 for r in relations], dtype=torch.float64)
        self.inequality = torch.tensor([r != "==" for r in relations], dtype=torch.bool)
        self.lam = torch.zeros_like(self.targets)
        self.scale = torch.ones_like(self.targets)
        self.metric = torch.eye(self.targets.numel(), dtype=torch.float64)
        self.c = positive_float("c0", c0)
        self.beta = positive_float("beta", beta)
        if self.beta <= 1:
            raise ValueError(f"beta must exceed 1, got {beta}")
        self.gamma = positive_float("gamma", gamma)
        self.c_max = positive_float("c_max", c_max)
        self.dual_step = positive_float("dual_step", dual_step)

    def violation(self, means: Tensor) -> Tensor:
        r""":math:`g = \pm(\bar T - b)` for batch means ``(..., M)``; feasible rows have :math:`g \le 0` (or :math:`= 0`)."""
        return self.sign.to(means) * (means - self.targets.to(means))

    def infeasibility(self, g: Tensor) -> Tensor:
        """The part of ``g`` that violates its row: ``g`` for equalities, ``max(0, g)`` for inequalities."""
        ineq = self.inequality.to(g.device)
        return torch.where(ineq, g.clamp_min(0.0), g)

    def loss(
        self, statistics: Tensor, log_q: Tensor, total: Callable[[Tensor], Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """The loss for one batch, and the full-batch violation ``g`` (detached).

        Args:
            statistics: :math:`T(x)` for the batch, ``(n, M)``.
            log_q: :math:`\\log q(x)` estimates, ``(n,)``.
            total: data-parallel training: sums a tensor over processes
                (gradient-preserving), making every mean a mean over the
                global batch and each half-batch the union of the processes'
                halves; ``None`` for one process.
        """
        n = statistics.shape[0]
        if n < 2:
            raise ValueError("the augmented Lagrangian needs a batch of at least 2 (two halves)")
        h = n // 2
        local = torch.cat(
            [
                statistics[:h].sum(0),
                statistics[h:].sum(0),
                log_q.sum().reshape(1),
                statistics.new_tensor([h, n - h]),
            ]
        )
        sums = local if total is None else total(local)
        m = statistics.shape[1]
        first, second, sum_log_q, (n1, n2) = sums[:m], sums[m : 2 * m], sums[2 * m], sums[2 * m + 1 :]
        g = self.violation((first + second) / (n1 + n2))
        g1 = self.violation(first / n1)
        g2 = self.violation(second / n2).detach()
        lam = self.lam.to(g)
        ineq = self.inequality.to(g.device)
        eq_term = lam * g + self.c * g1 * (self.metric.to(g) @ g2)
        ineq_term = (lam + self.c * g2 / self.scale.to(g).pow(2)).clamp_min(0.0) * g1
        penalty = torch.where(ineq, ineq_term, eq_term).sum()
        return sum_log_q / (n1 + n2) + penalty, g.detach()

    def update_multipliers(self, g_hat: Tensor) -> None:
        r""":math:`\lambda \leftarrow \lambda + \min(c, \rho)\, W\hat g`, clipped at zero for inequality rows.

        Classic ALM steps by :math:`c`; that is right when each inner problem
        is solved exactly, but after a short, noisy inner run it amplifies the
        error of :math:`\hat g` by :math:`c`. The step is capped at
        :math:`\rho` (``dual_step``, 1 = a Newton step in the whitened metric),
        while the penalty keeps its full :math:`c`. Without a penalty (:meth:`drop_penalty`) the step
        is the full Newton step.
        """
        size = 1.0 if self.c == 0 else min(self.c, self.dual_step)  # c = 0: drop_penalty, the Newton step
        g_hat = g_hat.double().cpu()
        step = torch.where(self.inequality, g_hat / self.scale.pow(2), self.metric @ g_hat)
        new = self.lam + size * step
        self.lam = torch.where(self.inequality, new.clamp_min(0.0), new)

    def drop_penalty(self) -> None:
        r"""Set :math:`c = 0` for good: the loss becomes the plain Lagrangian :math:`-\hat H(q) + \lambda^\top g`.

        For equality rows that is :math:`\mathrm{KL}(q \,\|\, p_\eta) - \log Z(\eta) + \text{const}` with
        :math:`p_\eta \propto e^{-\lambda^\top T}`: a reverse-KL fit to a fixed Gibbs form, whose
        gradient carries no half-batch violation. :meth:`update_multipliers` then takes the full
        Newton step (:math:`\rho = 1`) and :meth:`update_penalty` leaves :math:`c` at 0.

        Example:
            >>> alm = AugmentedLagrangian(torch.tensor([1.0]), ["=="], dual_step=0.25)
            >>> alm.set_covariance(torch.eye(1)); alm.drop_penalty(); alm.update_multipliers(torch.tensor([0.5]))
            >>> alm.c, alm.lam.tolist()
            (0.0, [0.5])
        """
        self.c = 0.0

    def set_covariance(self, cov: Tensor) -> None:
        r"""Set :math:`W = \Sigma_{\mathcal E}^{-1}` and :math:`s` from the covariance ``(M, M)`` of the statistics.

        The inverse is taken of the *correlation* matrix :math:`C = S^{-1}\Sigma S^{-1}`
        (:math:`S` the standard deviations), :math:`W = S^{-1} C^{-1} S^{-1}`, with eigenvalues of
        :math:`C` below :math:`10^{-8}` of its largest floored, so that redundant constraints do not
        blow :math:`W` up. Flooring :math:`\Sigma`'s own eigenvalues made the metric depend on the
        rows' units: for :math:`x, \dots, x^8` on :math:`[0, 5]` the variances span ten orders of
        magnitude, and every direction but :math:`x^8`'s was floored, so the penalty barely held the
        low moments (eight moments of a shifted lognormal never met their constraints, KL 0.70).
        """
        cov = cov.double().cpu()
        self.scale = cov.diagonal().clamp_min(1e-16).sqrt()
        eq = ~self.inequality
        metric = torch.zeros_like(cov)
        if eq.any():
            s = self.scale[eq]
            vals, vecs = torch.linalg.eigh(cov[eq][:, eq] / s / s.unsqueeze(-1))
            vals = vals.clamp_min(1e-8 * vals.max().clamp_min(1e-300))
            idx = eq.nonzero().squeeze(-1)
            metric[idx.unsqueeze(-1), idx] = ((vecs / vals) @ vecs.T) / s / s.unsqueeze(-1)
        self.metric = metric

    def norms(self, g: Tensor) -> np.ndarray:
        r"""Whitened violation norms per batch, ``(B,)``: :math:`\sqrt{g_{\mathcal E}^\top W g_{\mathcal E} + \sum_{\mathcal I} (\max(0, g_j)/s_j)^2}`."""
        g = self.infeasibility(g.double().cpu())
        eq = torch.where(self.inequality, torch.zeros_like(g), g)
        ineq = torch.where(self.inequality, g / self.scale, torch.zeros_like(g))
        quad = (eq @ self.metric * eq).sum(-1) + ineq.pow(2).sum(-1)
        return quad.clamp_min(0.0).sqrt().numpy()

    def update_penalty(
        self, norms_before: np.ndarray, norms_after: np.ndarray, rng: np.random.Generator
    ) -> bool:
        r"""MEFN's randomized rule: :math:`c \leftarrow \beta c` if the Welch test says norms did not shrink by :math:`\gamma`.

        ``t, p = ttest_ind(after, γ·before, equal_var=False)``; increase when
        :math:`t > 0` and :math:`u < 1 - p/2`, :math:`u \sim U(0, 1)`. Returns
        whether :math:`c` grew.
        """
        if self.c == 0:  # dropped for good (drop_penalty)
            return False
        t, p = stats.ttest_ind(norms_after, self.gamma * norms_before, equal_var=False)
        if np.isfinite(t) and t > 0 and rng.uniform() < 1.0 - p / 2.0 and self.c < self.c_max:
            self.c = min(self.c * self.beta, self.c_max)
            return True
        return False

    def converged(
        self,
        batch_means: Tensor,
        alpha: float = 0.05,
        rtol: float = 0.01,
        atol: float = 0.0,
        spread: Tensor | None = None,
    ) -> tuple[bool, np.ndarray]:
        r"""Whether every row is met: statistically indistinguishable from its target, or confidently within tolerance.

        Row :math:`j` passes if a t-test on the batch means does not reject
        :math:`g_j = 0` at level :math:`\alpha/M` (Bonferroni; one-sided
        :math:`g_j \le 0` for inequalities), **or** if the upper end of the
        same-level confidence interval of :math:`|g_j|` lies inside the
        row's tolerance :math:`\max(\text{rtol}\max(|b_j|, s_j), \text{atol})`
        (:func:`~maxent_mdn.objective.tolerance.row_tolerance`: relative to the
        target, or to the statistic's spread :math:`s_j` for a target smaller
        than that). The second clause matters with many test samples, where a
        test of exact equality rejects violations far below any tolerance a
        user cares about.

        Args:
            batch_means: violations :math:`g` of independent batches, ``(B, M)``.
            spread: :math:`s`, the standard deviations of the statistics under the model
                ``(M,)``; ``None``: only the targets set the scale.

        Returns:
            ``(converged, p_values)`` (the p-values of the exact-equality tests).
        """
        g = batch_means.double().cpu().numpy()
        b, m = g.shape
        level = alpha / max(m, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            two = stats.ttest_1samp(g, 0.0, alternative="two-sided").pvalue
            one = stats.ttest_1samp(g, 0.0, alternative="greater").pvalue
        ineq = self.inequality.numpy()
        p = np.where(ineq, one, two)
        p = np.where(np.isnan(p), np.where(np.abs(g).max(0) == 0, 1.0, 0.0), p)  # constant columns
        mean, se = g.mean(0), g.std(0, ddof=1) / np.sqrt(b)
        upper = np.where(ineq, mean, np.abs(mean)) + stats.t.ppf(1 - level, b - 1) * se
        s = np.zeros(m) if spread is None else spread.double().cpu().numpy()
        tolerance = row_tolerance(self.targets.numpy(), s, rtol, atol)
        ok = (p > level) | (upper <= tolerance)
        return bool(ok.all()), p

    def state_dict(self) -> dict[str, object]:
        """Multipliers and penalty, for checkpoints."""
        return {
            "lam": self.lam.clone(),
            "c": self.c,
            "scale": self.scale.clone(),
            "metric": self.metric.clone(),
            "dual_step": self.dual_step,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict`."""
        self.lam = torch.as_tensor(state["lam"], dtype=torch.float64).clone()
        self.c = float(state["c"])  # type: ignore[arg-type]
        self.scale = torch.as_tensor(state["scale"], dtype=torch.float64).clone()
        self.metric = torch.as_tensor(state["metric"], dtype=torch.float64).clone()
        self.dual_step = float(state.get("dual_step", self.dual_step))  # type: ignore[arg-type]  # older files: none
