"""The ``torch.distributions`` conventions shared by bases, flows and RAD flows."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

__all__ = ["EventModule"]


class EventModule(nn.Module, Distribution):
    r"""A module that is one :class:`torch.distributions.Distribution` over :math:`\mathbb R^D`.

    ``event_shape == (D,)``, ``batch_shape == ()``, ``support`` the set its samples
    live in (:data:`~torch.distributions.constraints.real_vector` unless a subclass
    says otherwise), ``has_rsample``. Being a ``Distribution``, it composes with
    :class:`~torch.distributions.Independent`,
    :class:`~torch.distributions.TransformedDistribution` and generic code written
    against that API; being an ``nn.Module``, its parameters train and move with
    ``.to(device)``. Arguments are checked by the subclasses themselves (no
    ``validate_args``).

    Subclasses set ``self.dim`` and implement ``rsample``; :meth:`sample` is
    ``rsample`` without gradients.
    """

    dim: int
    #: no parameters checked by ``torch.distributions`` (they are module parameters, checked at construction)
    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}
    has_rsample = True
    _validate_args = False

    @property
    def event_shape(self) -> torch.Size:
        """``(D,)``."""
        return torch.Size([self.dim])

    @property
    def batch_shape(self) -> torch.Size:
        """``()``: one distribution, not a batch of them."""
        return torch.Size()

    @property
    def support(self) -> constraints.Constraint:
        """Where the samples live: :math:`\\mathbb R^D` here; flows report their last layer's codomain."""
        return constraints.real_vector

    @staticmethod
    def sample_shape_of(n: int | torch.Size | tuple[int, ...]) -> torch.Size:
        """``(n,)`` for an int, else ``n`` as a ``torch.Size``."""
        return torch.Size([n]) if isinstance(n, int) else torch.Size(n)

    def _extended_shape(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Size:
        return torch.Size(sample_shape) + self.event_shape

    def rsample(
        self, sample_shape: torch.Size | tuple[int, ...] = ()
    ) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def label(self) -> str:
        """A short name for figure titles and logs (the class name unless a subclass says more)."""
        return type(self).__name__

    def on_step(self, step: int) -> None:
        """Called by the solver before training step ``step`` (annealing lives here); default: nothing."""

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        """Samples without gradients, shape ``sample_shape + event_shape``."""
        with torch.no_grad():
            return self.rsample(sample_shape)

    def __repr__(self) -> str:
        return nn.Module.__repr__(self)
