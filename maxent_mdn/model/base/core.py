"""The interface every base distribution of a flow implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from ..shapes import EventModule

__all__ = ["BaseDistribution"]


class BaseDistribution(EventModule, ABC):
    r"""A reparameterized distribution on :math:`\mathbb R^D` used as a flow's base.

    Follows :mod:`torch.distributions`: ``event_shape == (D,)``,
    ``batch_shape == ()``, :meth:`rsample` keeps gradients, :meth:`sample`
    does not. :meth:`rsample_and_log_prob` draws a batch and its log-density
    in one pass, with a base-specific ``estimator``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def _check_points(self, z: Tensor) -> None:
        if not isinstance(z, Tensor) or z.ndim < 1 or z.shape[-1] != self.dim:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"expected points of shape (..., {self.dim}), got {shape}")

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        """Reparameterized samples of shape ``sample_shape + event_shape``."""
        shape = torch.Size(sample_shape)
        z, _ = self.rsample_and_log_prob(shape.numel(), estimator=None)
        return z.reshape(shape + self.event_shape)

    @property
    def temperature(self) -> float | None:
        """A relaxation temperature the solver may anneal; ``None``: this base has none."""
        return None

    @temperature.setter
    def temperature(self, value: float) -> None:
        raise AttributeError(f"{type(self).__name__} has no temperature to set")

    @property
    def uses_nested_batch(self) -> bool:
        """Whether the training density is a nested-minibatch estimate over the batch itself (here: no)."""
        return False

    def evaluation_kwargs(self, num_nested: int) -> dict[str, object]:
        """Arguments of :meth:`rsample_and_log_prob` for an evaluation-grade density; an exact base needs none."""
        return {}

    @abstractmethod
    def rsample_and_log_prob(self, n: int, estimator: str | None = "nested") -> tuple[Tensor, Tensor]:
        """``n`` reparameterized samples ``(n, D)`` and their log-density ``(n,)``.

        ``estimator=None`` skips the density (returns zeros), for plain sampling.
        """

    @abstractmethod
    def log_prob(self, z: Tensor) -> Tensor:
        """Log-density at arbitrary points ``(..., D)``, shape ``(...)``."""

    @abstractmethod
    def exact_log_prob(self, z: Tensor) -> Tensor:
        """Closed-form log-density of the distribution's reference form (see subclass)."""
