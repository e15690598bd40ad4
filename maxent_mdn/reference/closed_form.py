r"""Closed-form maximum-entropy answers, recognized from a problem's constraints.

Every answer is an exponential family :math:`p^*(x) \propto \exp(\eta^\top T(x))`
on the support, with :math:`H^* = \log Z(\eta) - \eta^\top b`:

* mean and covariance on :math:`\mathbb R^D`: :math:`\mathcal N(m, \Sigma)`,
  :math:`H = \tfrac12\log\det(2\pi e\Sigma)`;
* means on :math:`(0,\infty)^D`: independent exponentials, :math:`H = \sum_i 1 + \log m_i`;
* :math:`\mathbb E[\log x_i] = b_i` on the simplex: Dirichlet(:math:`\alpha`) with
  :math:`\psi(\alpha_i) - \psi(\sum\alpha) = b_i`;
* means on a box :math:`(a, b)^D`: independent truncated exponentials
  (uniform when the mean is the midpoint); no constraint: uniform.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch
from scipy import optimize, special
from torch import Tensor

from ..problem.constraints import Covariance, Expectation, LogMean, Mean, SecondMoment
from ..problem.spec import MaxEntProblem
from ..problem.support import Interval, Positive, Real, Simplex

__all__ = [
    "DirichletReference",
    "ExponentialReference",
    "GaussianReference",
    "Reference",
    "TruncatedExponentialReference",
    "closed_form_reference",
    "dirichlet_from_log_means",
]


class Reference(ABC):
    """An exact (or grid-exact) maximum-entropy answer: its entropy, density and natural parameters."""

    kind: str = "reference"

    @property
    @abstractmethod
    def entropy(self) -> float:
        """Differential entropy :math:`H^*` in nats."""

    @abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density at points ``(n, D)`` in the problem's coordinates (float64)."""

    @property
    @abstractmethod
    def natural_params(self) -> dict[str, list]:
        """Parameters of the answer, JSON-ready."""

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """``n`` exact draws ``(n, D)`` in the problem's coordinates (float64), seeded."""
        raise NotImplementedError(f"{type(self).__name__} cannot draw samples")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(entropy={self.entropy:.6f})"


class GaussianReference(Reference):
    r""":math:`\mathcal N(m, \Sigma)`.

    Example:
        >>> round(GaussianReference([0.0], [[1.0]]).entropy, 6)
        1.418939
    """

    kind = "gaussian"

    def __init__(self, mean: list | np.ndarray | Tensor, cov: list | np.ndarray | Tensor) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.cov = torch.as_tensor(cov, dtype=torch.float64)
        self._dist = torch.distributions.MultivariateNormal(self.mean, covariance_matrix=self.cov)

    @property
    def entropy(self) -> float:
        return float(self._dist.entropy())

    def log_prob(self, x: Tensor) -> Tensor:
        return self._dist.log_prob(x.double())

    def sample(self, n: int, seed: int = 0) -> Tensor:
        draws = np.random.default_rng(seed).multivariate_normal(self.mean.numpy(), self.cov.numpy(), n)
        return torch.from_numpy(draws)

    @property
    def natural_params(self) -> dict[str, list]:
        prec = torch.linalg.inv(self.cov)
        return {"mean": self.mean.tolist(), "cov": self.cov.tolist(), "precision": prec.tolist()}


class ExponentialReference(Reference):
    r"""Independent exponentials with means :math:`m_i` on :math:`(0, \infty)^D`.

    Example:
        >>> round(ExponentialReference([2.0]).entropy, 6)  # 1 + log 2
        1.693147
    """

    kind = "exponential"

    def __init__(self, means: list | np.ndarray | Tensor) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float64).reshape(-1)

    @property
    def entropy(self) -> float:
        return float((1.0 + self.means.log()).sum())

    def log_prob(self, x: Tensor) -> Tensor:
        x = x.double()
        out = (-x / self.means - self.means.log()).sum(-1)
        return torch.where((x > 0).all(-1), out, torch.full_like(out, -math.inf))

    def sample(self, n: int, seed: int = 0) -> Tensor:
        return torch.from_numpy(
            np.random.default_rng(seed).exponential(self.means.numpy(), (n, len(self.means)))
        )

    @property
    def natural_params(self) -> dict[str, list]:
        return {"means": self.means.tolist(), "eta": (-1.0 / self.means).tolist()}


class DirichletReference(Reference):
    r"""Dirichlet(:math:`\alpha`) on the simplex; density w.r.t. the first :math:`D-1` coordinates.

    Example:
        >>> round(DirichletReference([1.0, 2.0, 3.0]).entropy, 4)
        -1.2443
    """

    kind = "dirichlet"

    def __init__(self, alpha: list | np.ndarray | Tensor) -> None:
        self.alpha = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1)
        self._dist = torch.distributions.Dirichlet(self.alpha)

    @property
    def entropy(self) -> float:
        return float(self._dist.entropy())

    def log_prob(self, x: Tensor) -> Tensor:
        x = x.double()
        inside = (x > 0).all(-1)
        safe = torch.where(inside.unsqueeze(-1), x, torch.full_like(x, 1.0 / x.shape[-1]))
        safe = safe / safe.sum(-1, keepdim=True)
        out = self._dist.log_prob(safe)
        return torch.where(inside, out, torch.full_like(out, -math.inf))

    def sample(self, n: int, seed: int = 0) -> Tensor:
        return torch.from_numpy(np.random.default_rng(seed).dirichlet(self.alpha.numpy(), n))

    @property
    def natural_params(self) -> dict[str, list]:
        return {"alpha": self.alpha.tolist(), "eta": (self.alpha - 1).tolist()}


def _trunc_exp_log_norm(eta: float, width: float) -> float:
    r""":math:`\log \int_0^w e^{\eta t} dt`, stable at :math:`\eta \to 0`."""
    if abs(eta * width) < 1e-8:
        return math.log(width) + 0.5 * eta * width
    if eta > 0:
        return eta * width + math.log(-math.expm1(-eta * width) / eta)
    return math.log(math.expm1(eta * width) / eta)


def _trunc_exp_mean(eta: float, width: float) -> float:
    r"""Mean of :math:`p(t) \propto e^{\eta t}` on :math:`[0, w]`."""
    a = eta * width
    if abs(a) < 1e-6:
        return width * (0.5 + a / 12.0)
    # 1 / (1 - e^{-a}), written without overflow for either sign of a
    first = 1.0 / -math.expm1(-a) if a > 0 else math.exp(a) / math.expm1(a)
    return width * (first - 1.0 / a)


class TruncatedExponentialReference(Reference):
    r"""Independent :math:`p(x_i) \propto e^{\eta_i x_i}` on :math:`(a, b)`, each with a given mean.

    Example:
        >>> ref = TruncatedExponentialReference([0.5], 0.0, 1.0)  # the midpoint: uniform
        >>> round(ref.entropy, 9), ref.eta
        (0.0, [0.0])
    """

    kind = "truncated-exponential"

    def __init__(self, means: list | np.ndarray | Tensor, low: float, high: float) -> None:
        self.low, self.high = float(low), float(high)
        width = self.high - self.low
        self.means = torch.as_tensor(means, dtype=torch.float64).reshape(-1)
        self.eta: list[float] = []
        for m in self.means.tolist():
            t = (m - self.low) / width
            if not 0 < t < 1:
                raise ValueError(f"a mean of {m} is outside the interval ({self.low}, {self.high})")
            if abs(t - 0.5) < 1e-12:
                self.eta.append(0.0)
                continue
            # the mean is increasing in eta; bracket the root generously in units of 1/width
            self.eta.append(
                optimize.brentq(lambda e, t=t: _trunc_exp_mean(e, 1.0) - t, -1e4, 1e4, xtol=1e-14) / width
            )
        self._log_norm = [self.low * e + _trunc_exp_log_norm(e, width) for e in self.eta]

    @property
    def entropy(self) -> float:
        return float(
            sum(ln - e * m for ln, e, m in zip(self._log_norm, self.eta, self.means.tolist(), strict=True))
        )

    def log_prob(self, x: Tensor) -> Tensor:
        x = x.double()
        eta = torch.tensor(self.eta, dtype=torch.float64)
        out = (eta * x).sum(-1) - sum(self._log_norm)
        inside = ((x > self.low) & (x < self.high)).all(-1)
        return torch.where(inside, out, torch.full_like(out, -math.inf))

    def sample(self, n: int, seed: int = 0) -> Tensor:
        r"""Inverse CDF per coordinate: :math:`t = \log(1 + u (e^{\eta w} - 1)) / \eta` above ``low``."""
        u = np.random.default_rng(seed).random((n, len(self.eta)))
        width = self.high - self.low
        cols = [
            u[:, i] * width if e == 0 else np.log1p(u[:, i] * np.expm1(e * width)) / e
            for i, e in enumerate(self.eta)
        ]
        return torch.from_numpy(self.low + np.stack(cols, -1))

    @property
    def natural_params(self) -> dict[str, list]:
        return {"eta": list(self.eta), "low": [self.low], "high": [self.high]}


def dirichlet_from_log_means(log_means: list[float] | np.ndarray) -> np.ndarray:
    r"""Solve :math:`\psi(\alpha_i) - \psi(\sum_j \alpha_j) = b_i` for :math:`\alpha > 0` (Newton on :math:`\log\alpha`).

    Example:
        >>> b = special.digamma([1.0, 2.0, 3.0]) - special.digamma(6.0)
        >>> np.round(dirichlet_from_log_means(b), 8)
        array([1., 2., 3.])
    """
    b = np.asarray(log_means, dtype=np.float64)
    if np.any(b >= 0) or special.logsumexp(b) >= 0:
        raise ValueError(
            f"no Dirichlet has E[log x] = {b.tolist()}: need every b_i < 0 and sum(exp(b_i)) < 1 (Jensen)"
        )

    def residual(log_alpha: np.ndarray) -> np.ndarray:
        alpha = np.exp(log_alpha)
        return special.digamma(alpha) - special.digamma(alpha.sum()) - b

    sol = optimize.root(residual, np.zeros_like(b), method="hybr", tol=1e-12)
    if np.max(np.abs(residual(sol.x))) > 1e-9:
        raise ValueError(
            f"could not solve for Dirichlet parameters from E[log x] = {b.tolist()}: {sol.message}"
        )
    return np.exp(sol.x)


def _only(problem: MaxEntProblem, *kinds: type) -> dict[type, Expectation] | None:
    found: dict[type, Expectation] = {}
    for c in problem.constraints:
        if type(c) not in kinds or type(c) in found or c.relation != "==":
            return None
        found[type(c)] = c
    return found


def _full(c: Expectation, dim: int) -> bool:
    return c.size == dim and getattr(c, "dims", None) in (None, list(range(dim)))


def closed_form_reference(problem: MaxEntProblem) -> Reference | None:
    """The closed-form answer when the constraints are of a recognized kind, else ``None``."""
    d, support = problem.dim, problem.support
    if isinstance(support, Real):
        found = _only(problem, Mean, Covariance, SecondMoment)
        if found is None:
            return None
        mean = found.get(Mean)
        if mean is not None and not _full(mean, d):
            return None
        loc = mean.target if mean is not None else torch.zeros(d, dtype=torch.float64)
        cov_c, sec_c = found.get(Covariance), found.get(SecondMoment)
        if cov_c is not None and sec_c is None and torch.allclose(cov_c.mean, loc):
            return GaussianReference(loc, cov_c.matrix)
        if sec_c is not None and cov_c is None and sec_c.matrix is not None and sec_c.matrix.shape[0] == d:
            return GaussianReference(loc, sec_c.matrix - torch.outer(loc, loc))
        if sec_c is not None and cov_c is None and sec_c.matrix is None and sec_c.size == d:
            return GaussianReference(loc, torch.diag(sec_c.target - loc.pow(2)))
        return None
    if isinstance(support, Positive):
        found = _only(problem, Mean)
        if found and _full(found[Mean], d):
            return ExponentialReference(found[Mean].target)
        return None
    if isinstance(support, Interval):
        found = _only(problem, Mean)
        if found is not None and not found:
            means = torch.full((d,), 0.5 * (support.low + support.high), dtype=torch.float64)
            return TruncatedExponentialReference(means, support.low, support.high)
        if found and _full(found[Mean], d):
            return TruncatedExponentialReference(found[Mean].target, support.low, support.high)
        return None
    if isinstance(support, Simplex):
        found = _only(problem, LogMean)
        if found and found[LogMean].size == d:
            return DirichletReference(dirichlet_from_log_means(found[LogMean].target.numpy()))
    return None
