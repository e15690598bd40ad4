"""The one contract between models and everything that trains, evaluates or draws them.

The solver, evaluation, density fitting and figures are written against
:class:`MaxEntModel` and ask a model what they need to know (does it carry a
temperature, is its density a nested-batch estimate, does its sampling make a
discrete draw) instead of checking its class. :class:`~maxent_mdn.Flow` (any
base) and :class:`~maxent_mdn.RADFlow` implement it; a new model that does is
trained by :func:`~maxent_mdn.solve` unchanged.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["MaxEntModel"]


@runtime_checkable
class MaxEntModel(Protocol):
    r"""A distribution :math:`q` on :math:`\mathbb R^D` that the solver can train.

    Attributes:
        dim: :math:`D`, the event size (``event_shape == (D,)``).
        discrete: sampling draws a discrete variable whose gradient reparameterization
            cannot carry (RAD's pieces); the model then also has
            ``rsample_with_score(n) -> (x, log_q, log_gate)`` and the solver adds the
            score-function term.
        temperature: the model's relaxation temperature (settable), or ``None``; the model
            anneals it itself in :meth:`on_step`.
        uses_nested_batch: :math:`\log q` is a nested-minibatch estimate over the batch
            itself (the Gumbel-MoG base); data-parallel training then gathers the nested
            batch across processes, and :meth:`evaluation_kwargs` asks for a large
            independent one.

    Example:
        >>> from maxent_mdn import make_flow, make_rad
        >>> flow, rad = make_flow(2, base="gumbel-mog"), make_rad(2)
        >>> isinstance(flow, MaxEntModel), flow.temperature, flow.uses_nested_batch, flow.discrete
        (True, 0.5, True, False)
        >>> isinstance(rad, MaxEntModel), rad.temperature, rad.discrete
        (True, None, True)
    """

    dim: int
    discrete: bool

    @property
    def event_shape(self) -> torch.Size: ...

    @property
    def temperature(self) -> float | None: ...

    @property
    def uses_nested_batch(self) -> bool: ...

    def on_step(self, step: int) -> None:
        """Called by the solver before training step ``step``: a schedule the model owns (annealing) acts here."""
        ...

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor: ...

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor: ...

    def rsample_and_log_prob(
        self, n: int | torch.Size | tuple[int, ...], estimator: str = ..., **kwargs: object
    ) -> tuple[Tensor, Tensor]:
        """Samples ``n + event_shape`` and their log-density ``n`` in one pass, with gradients (int ``n``: ``(n,)``)."""
        ...

    def log_prob(self, x: Tensor, **kwargs: object) -> Tensor:
        """:math:`\\log q(x)` at points ``(..., D)``; ``num_nested`` and ``exact`` are accepted by every model."""
        ...

    def evaluation_kwargs(self, num_nested: int) -> dict[str, object]:
        """Arguments of :meth:`rsample_and_log_prob` for an evaluation-grade density (independent of the batch)."""
        ...
