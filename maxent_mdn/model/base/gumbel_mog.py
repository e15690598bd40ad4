r"""The Gumbel-softmax mixture of Gaussians: the reparameterized base of this project."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._checks import positive_float, positive_int
from .concrete import concrete_log_prob
from .core import BaseDistribution
from .estimators import check_estimator, diag_normal_log_prob, mixture_log_prob
from .kernels import log_mean_gaussian
from .schedule import TemperatureSchedule

__all__ = ["GumbelMoG", "Selection"]


class Selection(NamedTuple):
    r"""A batch of soft component selections.

    Attributes:
        log_c: :math:`\log c`, shape ``(n, K)`` (finite even where :math:`c_k` underflows).
        c: the selection weights used for the parameters, ``(n, K)`` (one-hot
            in the forward pass when ``hard=True``).
        loc: :math:`\mu_i = c_i^\top\mu`, ``(n, D)``.
        scale: :math:`\sigma_i = c_i^\top \exp(\log\sigma)`, ``(n, D)``.
    """

    log_c: Tensor
    c: Tensor
    loc: Tensor
    scale: Tensor


class GumbelMoG(BaseDistribution):
    r"""Mixture of :math:`K` diagonal Gaussians on :math:`\mathbb R^D`, reparameterized with Gumbel-softmax.

    Sampling, for each of :math:`n` draws:

    .. math::

        g \sim \mathrm{Gumbel}(0, 1)^K,\quad
        c = \operatorname{softmax}\!\big((\log\alpha + g)/\tau\big),\quad
        z_0 = c^\top\mu + \omega \cdot c^\top \sigma,\quad \omega \sim \mathcal N(0, I_D),

    with :math:`\log\alpha = \operatorname{log\_softmax}(\text{logits})` and
    :math:`\sigma = \exp(\text{log\_sigma})`. Every sample is a differentiable
    function of ``logits``, ``mu`` and ``log_sigma``. As :math:`\tau \to 0`
    the law of :math:`z_0` tends to the mixture
    :math:`\sum_k \alpha_k \mathcal N(\mu_k, \sigma_k)` (eq. 1); for
    :math:`\tau > 0` its density is
    :math:`p(z_0) = \mathbb E_c[\mathcal N(z_0; c^\top\mu, c^\top\sigma)]`,
    estimated by the nested estimators of :mod:`maxent_mdn.model.base.estimators`.

    Args:
        dim: dimension :math:`D`.
        components: number of components :math:`K`.
        tau: temperature :math:`\tau > 0` (change it later through :attr:`tau`).
        anneal_rate, tau_min: the base's own annealing schedule
            (:class:`~maxent_mdn.model.base.schedule.TemperatureSchedule`),
            applied by :meth:`on_step`, which the solver calls before every step;
            ``anneal_rate = 0`` (the default) keeps :attr:`tau` as it is.
        hard: straight-through selections: one-hot forward pass, soft
            gradients (biased; exact mixture samples).
        spread: standard deviation of the random initial means.

    Example:
        >>> base = GumbelMoG(dim=2, components=3, tau=0.5)
        >>> z, log_p = base.rsample_and_log_prob(128, estimator="nested")
        >>> z.shape, log_p.shape
        (torch.Size([128, 2]), torch.Size([128]))
        >>> base.tau = 0.1
        >>> annealed = GumbelMoG(2, 3, tau=1.0, anneal_rate=1e-3, tau_min=0.1)
        >>> annealed.on_step(1000); round(annealed.tau, 4)
        0.3679
    """

    def __init__(
        self,
        dim: int,
        components: int,
        tau: float = 0.5,
        hard: bool = False,
        spread: float = 1.0,
        anneal_rate: float = 0.0,
        tau_min: float = 0.05,
    ) -> None:
        super().__init__(positive_int("dim", dim))
        self.components = positive_int("components", components)
        self.hard = bool(hard)
        self.logits = nn.Parameter(torch.zeros(components))
        self.mu = nn.Parameter(spread * torch.randn(components, dim))
        self.log_sigma = nn.Parameter(torch.zeros(components, dim))
        self.register_buffer("_tau", torch.tensor(positive_float("tau", tau)))
        self.schedule = TemperatureSchedule(float(tau), anneal_rate, tau_min)

    def on_step(self, step: int) -> None:
        """Before training step ``step``: :math:`\tau` from the schedule (nothing when it does not anneal)."""
        if self.schedule.rate > 0:
            self.tau = self.schedule(step)

    @property
    def tau(self) -> float:
        r"""The temperature :math:`\tau` (settable; must stay positive)."""
        return float(self._tau)

    @tau.setter
    def tau(self, value: float) -> None:
        self._tau.fill_(positive_float("tau", value))

    @property
    def temperature(self) -> float | None:
        """:attr:`tau`, under the name every model uses (``None`` where there is none)."""
        return self.tau

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.tau = value

    @property
    def uses_nested_batch(self) -> bool:
        """Yes: the training density averages over the batch's own selections."""
        return True

    def evaluation_kwargs(self, num_nested: int) -> dict[str, object]:
        """The independent nested estimate over ``num_nested`` fresh selections (no own-term bias)."""
        return {"estimator": "independent", "num_nested": num_nested}

    def extra_repr(self) -> str:
        return f"dim={self.dim}, components={self.components}, tau={self.tau:g}, hard={self.hard}"

    def select(self, n: int) -> Selection:
        r"""Draw ``n`` soft selections :math:`c` and the soft-selected :math:`(\mu_i, \sigma_i)`."""
        dtype, device = self.logits.dtype, self.logits.device
        finfo = torch.finfo(dtype)
        u = torch.rand(n, self.components, dtype=dtype, device=device)
        u = u.clamp(finfo.tiny, 1.0 - finfo.eps)  # keeps -log(-log u) finite
        gumbel = -torch.log(-torch.log(u))
        log_c = torch.log_softmax((torch.log_softmax(self.logits, -1) + gumbel) / self._tau, -1)
        c = log_c.exp()
        if self.hard:
            one_hot = F.one_hot(c.argmax(-1), self.components).to(dtype)
            c = one_hot - c.detach() + c
        return Selection(log_c, c, c @ self.mu, c @ self.log_sigma.exp())

    def rsample_and_log_prob(
        self,
        n: int,
        estimator: str | None = "nested",
        num_nested: int | None = None,
        gather: Callable[[Tensor], Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        r"""Draw ``n`` samples :math:`z_0` ``(n, D)`` and estimate :math:`\log p(z_0)` ``(n,)``.

        Args:
            n: batch size.
            estimator: ``"nested"`` (own term included; an entropy lower bound),
                ``"loo"``, ``"independent"``, ``"exact"`` (eq. 1) or
                ``"concrete-joint"`` (eq. 2); see
                :mod:`maxent_mdn.model.base.estimators`. ``None``: no density.
            num_nested: size of the independent nested batch (default ``n``).
            gather: data-parallel training: maps this process's nested
                parameters ``(m, 2D)`` to every process's, concatenated
                (:meth:`~maxent_mdn.training.distributed.World.gather`), so the
                nested average runs over the global batch.
        """
        positive_int("n", n)
        sel = self.select(n)
        z = sel.loc + torch.randn_like(sel.loc) * sel.scale
        if estimator is None:
            return z, z.new_zeros(n)
        check_estimator(estimator)
        if estimator == "loo" and gather is not None:
            raise ValueError(
                "the leave-one-out estimator is not available in data-parallel training; use nested"
            )
        if estimator == "nested":
            log_p = log_mean_gaussian(z, *self._nested(sel, gather))
        elif estimator == "loo":
            if n < 2:
                raise ValueError("the leave-one-out estimator needs a batch of at least 2")
            log_p = log_mean_gaussian(z, sel.loc, sel.scale, exclude_diagonal=True)
        elif estimator == "independent":
            nested = self.select(positive_int("num_nested", num_nested or n))
            log_p = log_mean_gaussian(z, *self._nested(nested, gather))
        elif estimator == "exact":
            log_p = self.exact_log_prob(z)
        else:  # concrete-joint
            log_p = concrete_log_prob(sel.log_c, self.logits, self._tau)
            log_p = log_p + diag_normal_log_prob(z, sel.loc, sel.scale)
        return z, log_p

    @staticmethod
    def _nested(sel: Selection, gather: Callable[[Tensor], Tensor] | None) -> tuple[Tensor, Tensor]:
        """The nested batch's (loc, scale): this process's, or every process's with ``gather`` (one collective)."""
        if gather is None:
            return sel.loc, sel.scale
        both = gather(torch.cat([sel.loc, sel.scale], -1))
        return both[:, : sel.loc.shape[1]], both[:, sel.loc.shape[1] :]

    def log_prob(self, z: Tensor, num_nested: int = 4096, chunk_size: int | None = None) -> Tensor:
        r"""Independent nested estimate of :math:`\log p(z_0)` at arbitrary points.

        One batch of ``num_nested`` selections serves all points, so
        :math:`\int \hat p = 1` exactly for every draw; the estimate of
        :math:`p` is unbiased and its log is biased low by
        :math:`O(1/\text{num\_nested})`. Memory is bounded by chunking.

        Example:
            >>> GumbelMoG(1, 2).log_prob(torch.zeros(3, 1)).shape
            torch.Size([3])
        """
        self._check_points(z)
        flat = z.reshape(-1, self.dim)
        nested = self.select(positive_int("num_nested", num_nested))
        out = log_mean_gaussian(flat, nested.loc, nested.scale, chunk_size=chunk_size)
        return out.reshape(z.shape[:-1])

    def exact_log_prob(self, z: Tensor) -> Tensor:
        r"""Eq. 1, :math:`\log\sum_k \alpha_k \mathcal N(z; \mu_k, \sigma_k)`: the :math:`\tau \to 0` limit."""
        self._check_points(z)
        flat = z.reshape(-1, self.dim)
        out = mixture_log_prob(flat, self.logits, self.mu, self.log_sigma.exp())
        return out.reshape(z.shape[:-1])

    @property
    def log_weights(self) -> Tensor:
        r""":math:`\log\alpha`, shape ``(K,)``."""
        return torch.log_softmax(self.logits, -1)
