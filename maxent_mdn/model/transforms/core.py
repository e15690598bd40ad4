"""The interface of every flow layer."""

from __future__ import annotations

from torch import Tensor, nn
from torch.distributions import constraints

__all__ = ["Transform"]


class Transform(nn.Module):
    r"""A bijection :math:`y = f(x)` that also returns :math:`\log|\det \partial f/\partial x|`.

    Subclasses implement :meth:`forward` and, where it exists in closed or
    numerical form, :meth:`inverse`. Both act on batches ``(n, D)`` and return
    per-row log-determinants ``(n,)``:

    * ``forward(x) -> (y, log|det ∂y/∂x|)``
    * ``inverse(y) -> (x, log|det ∂x/∂y|)`` (the inverse's own log-det, i.e.
      minus the forward log-det at ``x``).

    ``dim_in``/``dim_out`` differ only for maps between spaces of different
    coordinates (the simplex map adds the dependent last coordinate).
    ``domain`` and ``codomain`` are :mod:`torch.distributions.constraints` on
    vectors (``event_dim == 1``), as in :class:`torch.distributions.transforms.Transform`;
    a flow's ``support`` is its last layer's ``codomain``.
    """

    #: where inputs live (every layer here takes all of :math:`\mathbb R^D`)
    domain: constraints.Constraint = constraints.real_vector
    #: where outputs land; support maps override it
    codomain: constraints.Constraint = constraints.real_vector

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    @property
    def dim_in(self) -> int:
        """Dimension of the input."""
        return self.dim

    @property
    def dim_out(self) -> int:
        """Dimension of the output."""
        return self.dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Inverse map and the inverse's log-determinant."""
        raise NotImplementedError(f"{type(self).__name__} has no inverse")
