r"""Normalizing flow :math:`x = g_L \circ \dots \circ g_1(z_0)` over a base distribution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import constraints

from .base import BaseDistribution
from .shapes import EventModule
from .transforms import Transform

__all__ = ["Flow"]


class Flow(EventModule):
    r"""A base distribution pushed through a sequence of bijections.

    .. math::

        x = g_L \circ \dots \circ g_1(z_0), \qquad
        \log q(x) = \log p_0(z_0) - \sum_{l=1}^{L} \log\left|\det \frac{\partial g_l}{\partial z_{l-1}}\right|.

    :meth:`rsample_and_log_prob` returns samples and their log-density in one
    forward pass (no inverse needed), with the base's estimator of
    :math:`\log p_0` (for :class:`~maxent_mdn.GumbelMoG`: nested by default).
    :meth:`log_prob` evaluates arbitrary points by inverting every layer.

    Args:
        base: the base distribution :math:`p_0` on :math:`\mathbb R^{D_0}`.
        transforms: the layers :math:`g_1, \dots, g_L`, in sampling order.

    Example:
        >>> from maxent_mdn import GumbelMoG, Planar
        >>> flow = Flow(GumbelMoG(2, 4), [Planar(2) for _ in range(3)])
        >>> x, log_q = flow.rsample_and_log_prob(256)
        >>> x.shape, log_q.shape
        (torch.Size([256, 2]), torch.Size([256]))
    """

    #: sampling is reparameterized throughout (no discrete draw; see :class:`~maxent_mdn.model.contract.MaxEntModel`)
    discrete = False

    def __init__(self, base: BaseDistribution, transforms: Sequence[Transform]) -> None:
        super().__init__()
        dim = base.dim
        for i, t in enumerate(transforms):
            if not isinstance(t, Transform):
                raise TypeError(f"transform {i} is a {type(t).__name__}, not a Transform")
            if t.dim_in != dim:
                raise ValueError(
                    f"transform {i} ({type(t).__name__}) expects dimension {t.dim_in}, gets {dim}"
                )
            dim = t.dim_out
        self.base = base
        self.transforms = nn.ModuleList(transforms)
        self.dim = dim

    @property
    def temperature(self) -> float | None:
        """The base's relaxation temperature (the Gumbel-MoG's :math:`\\tau`), or ``None``; settable."""
        return self.base.temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.base.temperature = value

    @property
    def label(self) -> str:
        """``"GumbelMoG base"`` and the like: what distinguishes flows in a figure title."""
        return f"{type(self.base).__name__} base"

    def on_step(self, step: int) -> None:
        """Before training step ``step``: the base's schedule (the Gumbel-MoG's annealed :math:`\\tau`)."""
        self.base.on_step(step)

    @property
    def uses_nested_batch(self) -> bool:
        """Whether the base's training density is a nested-minibatch estimate."""
        return self.base.uses_nested_batch

    def evaluation_kwargs(self, num_nested: int) -> dict[str, object]:
        """The base's arguments for an evaluation-grade density (see :meth:`rsample_and_log_prob`)."""
        return self.base.evaluation_kwargs(num_nested)

    @property
    def support(self) -> constraints.Constraint:
        """Where the samples live: the last layer's ``codomain`` (the support map's, e.g. the simplex)."""
        return self.transforms[-1].codomain if len(self.transforms) else self.base.support

    def push(self, z: Tensor) -> tuple[Tensor, Tensor]:
        r"""Map base points ``(n, D_0)`` forward; returns ``x`` and :math:`\sum_l \log|\det J_l|` ``(n,)``."""
        total = z.new_zeros(z.shape[0])
        for t in self.transforms:
            z, ladj = t(z)
            total = total + ladj
        return z, total

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        """Reparameterized samples of shape ``sample_shape + event_shape``."""
        shape = torch.Size(sample_shape)
        x, _ = self.push(self.base.rsample((shape.numel(),)))
        return x.reshape(shape + self.event_shape)

    def rsample_and_log_prob(
        self, n: int | torch.Size | tuple[int, ...], estimator: str = "nested", **base_kwargs: object
    ) -> tuple[Tensor, Tensor]:
        r"""Samples of shape ``n + event_shape`` and :math:`\log q(x)` of shape ``n``, in one pass.

        An int ``n`` means ``(n,)``: samples ``(n, D)``, log-densities ``(n,)``. A
        nested estimate averages over all the draws, whatever their shape.
        ``estimator`` and ``base_kwargs`` (e.g. ``num_nested``) go to the base's
        :meth:`rsample_and_log_prob`.
        """
        shape = self.sample_shape_of(n)
        z, log_p = self.base.rsample_and_log_prob(shape.numel(), estimator=estimator, **base_kwargs)
        x, ladj = self.push(z)
        return x.reshape(shape + self.event_shape), (log_p - ladj).reshape(shape)

    def log_prob(self, x: Tensor, exact: bool = False, **base_kwargs: object) -> Tensor:
        r""":math:`\log q(x)` at arbitrary points ``(..., D)`` by inverting each layer.

        ``base_kwargs`` go to the base's :meth:`log_prob` (for
        :class:`~maxent_mdn.GumbelMoG`: ``num_nested``, the size of the
        independent nested batch; other bases ignore it). ``exact=True`` uses
        the base's closed form instead (for the Gumbel-MoG, the mixture of eq. 1).
        """
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"expected points of shape (..., {self.dim}), got {tuple(x.shape)}")
        z, total = self.pull(x.reshape(-1, self.dim))
        base = self.base.exact_log_prob(z) if exact else self.base.log_prob(z, **base_kwargs)
        return (base + total).reshape(x.shape[:-1])

    def pull(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Map points ``(n, D)`` back to the base; returns :math:`z_0` and :math:`\sum_l \log|\det \partial g_l^{-1}/\partial z_l|` ``(n,)``."""
        total = x.new_zeros(x.shape[0])
        for t in reversed(self.transforms):
            x, ladj = t.inverse(x)
            total = total + ladj
        return x, total
