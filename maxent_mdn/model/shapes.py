"""The ``torch.distributions`` shape conventions shared by bases, flows and RAD flows."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["EventModule"]


class EventModule(nn.Module):
    r"""A module that is one distribution over :math:`\mathbb R^D`: ``event_shape == (D,)``, ``batch_shape == ()``.

    Subclasses set ``self.dim`` and implement ``rsample``; :meth:`sample` is
    ``rsample`` without gradients.
    """

    dim: int

    @property
    def event_shape(self) -> torch.Size:
        """``(D,)``."""
        return torch.Size([self.dim])

    @property
    def batch_shape(self) -> torch.Size:
        """``()``: one distribution, not a batch of them."""
        return torch.Size()

    def rsample(
        self, sample_shape: torch.Size | tuple[int, ...] = ()
    ) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        """Samples without gradients, shape ``sample_shape + event_shape``."""
        with torch.no_grad():
            return self.rsample(sample_shape)
