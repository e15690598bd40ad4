r"""Adapters both ways between this project's layers and :class:`torch.distributions.transforms.Transform`.

* :class:`FromTorch` makes a flow layer of any ``torch.distributions`` transform,
  or of a module that builds one on each call (zuko's lazy transforms, so their
  parameters train): train a zuko neural spline flow on a Gumbel-MoG base with
  :func:`~maxent_mdn.solve` (README, "Bring your own layers").
* :class:`ToTorch` makes a ``torch.distributions`` transform of a layer here,
  for :class:`~torch.distributions.TransformedDistribution` and other generic code.

Both keep the log-determinant convention of each side: here
:math:`\log|\det \partial y/\partial x|` per row ``(n,)``; there
``log_abs_det_jacobian(x, y)`` with ``event_dim`` summed dimensions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import constraints
from torch.distributions import transforms as dt

from ..._checks import positive_int
from .core import Transform

__all__ = ["FromTorch", "ToTorch"]


def _per_row(ladj: Tensor, event_dim: int) -> Tensor:
    """A torch transform's log-det with ``event_dim`` 0 is per coordinate: sum it over the vector."""
    return ladj.sum(-1) if event_dim == 0 else ladj


class FromTorch(Transform):
    r"""A :class:`torch.distributions.transforms.Transform` as a flow layer on :math:`\mathbb R^D`.

    .. math::

        y = t(x), \qquad \log|\det \partial y/\partial x| = \textstyle\sum_{\text{event}} t.\mathrm{log\_abs\_det\_jacobian}(x, y).

    Args:
        transform: a fixed torch transform (e.g. ``AffineTransform(0.0, 2.0)``), or an
            ``nn.Module`` that returns one when called with no argument (zuko's
            ``LazyTransform``; e.g. ``zuko.flows.NSF(D, transforms=3).transform``). A
            module is registered as a submodule, so its parameters train with the flow.
        dim: :math:`D`, the input (and output) size.

    Uses the transform's ``call_and_ladj`` where it has one (zuko's: one pass). The
    inverse is the transform's ``inv`` (for zuko's autoregressive layers, ``D``
    sequential passes: :meth:`Flow.log_prob` of arbitrary points is slower than
    sampling with densities, which the solver uses).

    Example:
        >>> from torch.distributions.transforms import AffineTransform
        >>> layer = FromTorch(AffineTransform(1.0, 2.0), dim=3)
        >>> y, ladj = layer(torch.zeros(4, 3))
        >>> y[0].tolist(), round(float(ladj[0]), 4)  # 3 log 2
        ([1.0, 1.0, 1.0], 2.0794)
    """

    def __init__(self, transform: dt.Transform | nn.Module | Callable[[], dt.Transform], dim: int) -> None:
        super().__init__(positive_int("dim", dim))
        if isinstance(transform, nn.Module):
            self.module: nn.Module | None = transform
            self._fixed: dt.Transform | None = None
        elif isinstance(transform, dt.Transform):
            self.module, self._fixed = None, transform
        else:
            raise TypeError(
                f"FromTorch needs a torch.distributions Transform or a module that builds one, "
                f"got {type(transform).__name__}"
            )

    def build(self) -> dt.Transform:
        """The torch transform with the current parameters."""
        return self._fixed if self.module is None else self.module()

    @property
    def codomain(self) -> constraints.Constraint:
        """The transform's codomain, on vectors."""
        codomain = self.build().codomain
        return constraints.independent(codomain, 1) if codomain.event_dim == 0 else codomain

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        t = self.build()
        if hasattr(t, "call_and_ladj"):
            y, ladj = t.call_and_ladj(x)
        else:
            y = t(x)
            ladj = t.log_abs_det_jacobian(x, y)
        return y, _per_row(ladj, t.domain.event_dim)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        t = self.build()
        x = t.inv(y)
        return x, -_per_row(t.log_abs_det_jacobian(x, y), t.domain.event_dim)


class ToTorch(dt.Transform):
    r"""A flow layer here as a :class:`torch.distributions.transforms.Transform` on vectors (``event_dim`` 1).

    ``log_abs_det_jacobian(x, y)`` is the layer's per-row :math:`\log|\det \partial y/\partial x|`
    at ``x``; batch dimensions of any shape are flattened around the layer's ``(n, D)`` call.
    The layer's parameters stay in the layer (train the layer, not this wrapper).

    Example:
        >>> from torch.distributions import Normal, Independent, TransformedDistribution
        >>> from maxent_mdn import Exp
        >>> q = TransformedDistribution(Independent(Normal(torch.zeros(2), 1.0), 1), [ToTorch(Exp(2))])
        >>> x = q.sample((5,))
        >>> bool((x > 0).all()), q.log_prob(x).shape
        (True, torch.Size([5]))
    """

    bijective = True

    def __init__(self, layer: Transform, cache_size: int = 0) -> None:
        if not isinstance(layer, Transform):
            raise TypeError(f"ToTorch needs a maxent_mdn Transform, got {type(layer).__name__}")
        super().__init__(cache_size=cache_size)
        self.layer = layer

    @property
    def domain(self) -> constraints.Constraint:  # type: ignore[override]
        return self.layer.domain

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        return self.layer.codomain

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ToTorch) and other.layer is self.layer

    def __hash__(self) -> int:
        return id(self.layer)

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        return torch.Size(shape[:-1]) + (self.layer.dim_out,)

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        return torch.Size(shape[:-1]) + (self.layer.dim_in,)

    def _call(self, x: Tensor) -> Tensor:
        y, _ = self.layer(x.reshape(-1, self.layer.dim_in))
        return y.reshape(x.shape[:-1] + (self.layer.dim_out,))

    def _inverse(self, y: Tensor) -> Tensor:
        x, _ = self.layer.inverse(y.reshape(-1, self.layer.dim_out))
        return x.reshape(y.shape[:-1] + (self.layer.dim_in,))

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        _, ladj = self.layer(x.reshape(-1, self.layer.dim_in))
        return ladj.reshape(x.shape[:-1])
