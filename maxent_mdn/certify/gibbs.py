r"""The maximum-entropy answer in its exponential-family (Gibbs) form, with exact samples by Metropolis–Hastings.

The maximum-entropy distribution under :math:`\mathbb E[T(x)] = b` is

.. math::

    p_\eta(x) = \exp\big(\eta^\top T(x) - \log Z(\eta)\big), \qquad x \in \mathcal S,

with :math:`\eta` the natural parameters the dual polish found
(:func:`~maxent_mdn.certify.polish`) and :math:`\log Z` their importance-sampled
log-partition. For a Gaussian :math:`\eta` holds the precision matrix
:math:`P = \Sigma^{-1}` (:math:`-P_{ii}/2` on a variance row, :math:`-P_{ij}` on a
covariance row) and the shift; for a price constraint it is the tilt that turns
the prior into the risk-neutral law.

Exact draws use the trained flow :math:`q` as an *independent* Metropolis–Hastings
proposal: a chain at :math:`x` moves to :math:`y \sim q` with probability
:math:`\min\big(1, e^{w(y) - w(x)}\big)`, :math:`w = \eta^\top T - \log q`, which
leaves :math:`p_\eta` invariant whatever :math:`q` is, and mixes fast where
:math:`q \approx p_\eta` (the acceptance rate is then near 1). Chains start from
importance resampling of a pilot batch, so they start near stationarity. For the
Gumbel-MoG base :math:`\log q` is the independent nested estimate: its error
(:math:`O(1/M)`, small at :math:`M = 8192`) enters the acceptance ratio, so the
draws are exact up to that error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..problem.spec import MaxEntProblem
from .dual import Certificate
from .weights import pareto_k

__all__ = ["Gibbs", "LowAcceptanceError", "MHDraws"]

Proposal = Callable[[int], tuple[Tensor, Tensor]]


class LowAcceptanceError(RuntimeError):
    """The flow is too far from :math:`p_\\eta` for Metropolis–Hastings to return good samples in reasonable time."""


@dataclass
class MHDraws:
    r"""Samples from independent Metropolis–Hastings and how the chains moved.

    Attributes:
        samples: ``(n, D)`` float64 draws, chain by chain.
        log_weights: :math:`w = \eta^\top T - \log q` at the samples, ``(n,)``.
        acceptance: fraction of accepted proposals after burn-in.
        thin: proposals per kept draw and chain.
        chains: chains run in parallel.
        proposals: flow draws spent, burn-in included.
    """

    samples: Tensor
    log_weights: Tensor
    acceptance: float
    thin: int
    chains: int
    proposals: int


class Gibbs:
    r""":math:`p_\eta(x) = \exp(\eta^\top T(x) - \log Z)` on the problem's support, with a proposal for exact draws.

    Args:
        problem: the constraints (their statistics :math:`T` and support).
        eta: natural parameters ``(M,)``, one per constraint row.
        log_partition: :math:`\log Z(\eta)`.
        proposal: draws ``n -> (x, log q(x))`` from a distribution close to
            :math:`p_\eta` (the trained flow: :meth:`from_flow`); needed only by
            :meth:`sample`.

    Example:
        >>> import numpy as np
        >>> from maxent_mdn import MaxEntProblem, Mean, Positive
        >>> from maxent_mdn.reference import ExponentialReference
        >>> problem = MaxEntProblem(1, [Mean(2.0)], Positive())
        >>> prop, rng = ExponentialReference([2.5]), np.random.default_rng(0)  # heavier-tailed than Exp(mean 2)
        >>> def draw(n):
        ...     x = torch.from_numpy(rng.exponential(2.5, (n, 1)))
        ...     return x, prop.log_prob(x)
        >>> gibbs = Gibbs(problem, torch.tensor([-0.5]), math.log(2.0), proposal=draw)
        >>> gibbs.log_prob(torch.tensor([[1.0], [-1.0]]))  # log(e^{-1/2} / 2), and off the support
        tensor([-1.1931,    -inf], dtype=torch.float64)
        >>> out = gibbs.sample_with_diagnostics(4000, seed=0)
        >>> out.samples.shape, round(float(out.samples.mean()), 1), out.acceptance > 0.8
        (torch.Size([4000, 1]), 2.0, True)
    """

    #: a kept draw repeats the previous kept draw of its chain with at most this probability
    REPEAT = 0.05

    def __init__(
        self, problem: MaxEntProblem, eta: Tensor, log_partition: float, proposal: Proposal | None = None
    ) -> None:
        self.problem = problem
        self.eta = torch.as_tensor(eta, dtype=torch.float64)
        if self.eta.shape != problem.targets.shape:
            raise ValueError(
                f"eta has {self.eta.numel()} entries, the problem {problem.targets.numel()} constraint rows"
            )
        if not math.isfinite(log_partition):
            raise ValueError(f"log_partition must be finite, got {log_partition}")
        self.log_partition = float(log_partition)
        self.proposal = proposal

    @classmethod
    def from_flow(
        cls,
        problem: MaxEntProblem,
        eta: Tensor,
        log_partition: float,
        flow: torch.nn.Module,
        num_nested: int = 8192,
    ) -> Gibbs:
        """:math:`p_\\eta` with ``flow`` as the proposal (its density: the independent nested estimate for Gumbel-MoG)."""
        from ..training.evaluate import sample_with_log_prob  # training imports this package

        return cls(problem, eta, log_partition, lambda n: sample_with_log_prob(flow, n, num_nested))

    @property
    def event_shape(self) -> torch.Size:
        return torch.Size([self.problem.dim])

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size()

    def _unnormalized(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            stats = self.problem.statistics(x.double()).double()
        out = stats @ self.eta
        inside = self.problem.support.contains(x)
        return torch.where(inside, out, torch.full_like(out, -math.inf))

    def log_prob(self, x: Tensor) -> Tensor:
        """:math:`\\eta^\\top T(x) - \\log Z` at points ``(n, D)`` (float64; :math:`-\\infty` off the support)."""
        if x.dim() < 1 or x.shape[-1] != self.problem.dim:
            raise ValueError(f"points must have shape (n, {self.problem.dim}), got {tuple(x.shape)}")
        return self._unnormalized(x) - self.log_partition

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = (), seed: int = 0) -> Tensor:
        """Exact draws ``(*sample_shape, D)``; see :meth:`sample_with_diagnostics`."""
        shape = torch.Size(sample_shape)
        n = max(1, shape.numel())
        return self.sample_with_diagnostics(n, seed=seed).samples.reshape(*shape, self.problem.dim)

    def sample_with_diagnostics(
        self,
        n: int,
        seed: int = 0,
        chains: int | None = None,
        burn_in: int = 20,
        min_acceptance: float = 0.05,
        max_thin: int = 100,
    ) -> MHDraws:
        r"""``n`` draws of :math:`p_\eta` by independent Metropolis–Hastings with the proposal.

        ``chains`` (default :math:`\min(n, 1000)`) start from importance
        resampling of a pilot batch and run ``burn_in`` steps, which also
        measure the acceptance rate :math:`a`. Thinning keeps every ``thin``-th
        state, ``thin`` the least with :math:`(1 - a)^{\text{thin}} \le 0.05`
        (a kept draw repeats the previous one with probability at most 5%).

        Independent MH is uniformly ergodic when the weights :math:`p_\eta / q`
        are bounded; the pilot's Pareto tail index :math:`\hat k` (as in
        :class:`~maxent_mdn.certify.Certificate`) checks that they are not heavy-tailed.
        Measured on Exp(1) with an Exp(mean 0.05) proposal: 23% acceptance,
        yet a sample mean of 0.24; :math:`\hat k` flags it.

        Raises:
            LowAcceptanceError: :math:`\hat k \ge 0.7`, :math:`a` below ``min_acceptance``, or a thinning
                above ``max_thin`` would be needed: the proposal is too far from
                :math:`p_\eta` (train longer) and the samples would be poor.
        """
        if self.proposal is None:
            raise ValueError("this Gibbs form has no proposal to sample with (use Gibbs.from_flow)")
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"the number of samples must be a positive integer, got {n!r}")
        chains = min(n, 1000) if chains is None else chains
        if chains <= 0:
            raise ValueError(f"chains must be positive, got {chains}")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            return self._run(n, chains, burn_in, min_acceptance, max_thin, generator)

    def _draw(self, n: int) -> tuple[Tensor, Tensor]:
        x, log_q = self.proposal(n)  # type: ignore[misc]
        x = x.double().cpu()
        return x, self._unnormalized(x) - log_q.double().cpu()

    def _run(
        self,
        n: int,
        chains: int,
        burn_in: int,
        min_acceptance: float,
        max_thin: int,
        generator: torch.Generator,
    ) -> MHDraws:
        pilot_x, pilot_w = self._draw(max(4 * chains, 4096))
        if not torch.isfinite(pilot_w).any():
            raise LowAcceptanceError("no proposal draw has a finite weight under p_eta")
        k = pareto_k(pilot_w)
        if k >= Certificate.PARETO_K_MAX:  # p/q unbounded: the chains stall in the flow's tails
            raise LowAcceptanceError(
                f"the flow's tails are lighter than p_eta's (Pareto k of the weights {k:.2f} >= "
                f"{Certificate.PARETO_K_MAX}): Metropolis-Hastings would stall there; train longer"
            )
        pick = torch.multinomial(torch.softmax(pilot_w, 0), chains, replacement=True, generator=generator)
        x, w = pilot_x[pick], pilot_w[pick]
        proposals = pilot_x.shape[0]

        def step(x: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            y, wy = self._draw(chains)
            u = torch.rand(chains, generator=generator, dtype=torch.float64)
            accept = u.log() < (wy - w)
            return torch.where(accept[:, None], y, x), torch.where(accept, wy, w), accept

        accepted = 0
        for _ in range(burn_in):
            x, w, acc = step(x, w)
            accepted += int(acc.sum())
        proposals += burn_in * chains
        rate = accepted / max(burn_in * chains, 1)
        if rate >= 1.0 - self.REPEAT:
            thin = 1
        else:  # a chain stays put for `thin` steps with probability (1 - rate)^thin
            thin = math.ceil(math.log(self.REPEAT) / math.log1p(-rate)) if rate > 0 else max_thin + 1
        if rate < min_acceptance or thin > max_thin:
            raise LowAcceptanceError(
                f"Metropolis-Hastings accepted {rate:.1%} of the flow's proposals (needs at least "
                f"{min_acceptance:.0%} and a thinning of at most {max_thin}): the flow is too far from the "
                "maximum-entropy answer to give exact samples; train longer"
            )
        per_chain = -(-n // chains)
        kept, kept_w, accepted = [], [], 0
        for _ in range(per_chain):
            for _ in range(thin):
                x, w, acc = step(x, w)
                accepted += int(acc.sum())
            kept.append(x)
            kept_w.append(w)
        proposals += per_chain * thin * chains
        samples = torch.stack(kept, 1).reshape(-1, self.problem.dim)[:n]
        log_weights = torch.stack(kept_w, 1).reshape(-1)[:n]
        rate = accepted / (per_chain * thin * chains)
        return MHDraws(samples, log_weights, rate, int(thin), chains, proposals)

    @staticmethod
    def log_partition_upper(draws: MHDraws) -> tuple[float, float]:
        r"""An upper estimate of :math:`\log Z` from exact draws, with its standard error.

        Gibbs' inequality :math:`\mathrm{KL}(p_\eta\,\|\,q) \ge 0` gives
        :math:`\log Z \le \mathbb E_{p_\eta}[\eta^\top T - \log q]` (the EUBO), exceeding
        :math:`\log Z` by exactly :math:`\mathrm{KL}(p_\eta\,\|\,q)`. Importance sampling from
        :math:`q` errs the other way (low, by Jensen and by tails it misses), so the two
        bracket :math:`\log Z`, and :math:`D^+ = \text{EUBO} - \eta^\top b` is a dual bound that
        stays conservative when the importance weights are uneven. The standard error comes
        from the spread of the chains' own means (the chains are independent; draws within one
        are not: in the tails, where the acceptance falls, a chain stays put for long).
        """
        w = draws.log_weights.double()
        n = w.numel()
        per_chain = -(-n // draws.chains)
        chain = torch.arange(n) // per_chain
        means = torch.zeros(int(chain.max()) + 1, dtype=torch.float64).index_add_(0, chain, w)
        means = means / torch.bincount(chain).double()
        se = float(means.std(unbiased=True) / math.sqrt(means.numel())) if means.numel() > 1 else math.inf
        return float(w.mean()), se
