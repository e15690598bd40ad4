r"""Tail (Polyak–Ruppert) averaging of parameters over the end of an inner run."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TailAverage"]


class TailAverage:
    r"""Running mean :math:`\bar\theta_k = \bar\theta_{k-1} + (\theta_k - \bar\theta_{k-1})/k` of a module's parameters.

    With a fixed-size (Adam) step the iterates of a stochastic optimizer
    jitter around the optimum of the inner problem by about the learning rate;
    their mean over the last part of the run sits much closer to it (the
    error of an average of :math:`k` noisy iterates falls like
    :math:`1/\sqrt k`), so the averaged parameters are the ones measured and
    continued from. Buffers are left alone.

    Args:
        module: the module whose parameters are averaged.

    Example:
        >>> layer = torch.nn.Linear(1, 1, bias=False)
        >>> avg = TailAverage(layer)
        >>> for w in (1.0, 3.0):
        ...     _ = layer.weight.data.fill_(w)
        ...     avg.update()
        >>> avg.copy_to()
        >>> layer.weight.item()
        2.0
    """

    def __init__(self, module: nn.Module) -> None:
        self.params = [p for p in module.parameters()]
        self.mean: list[torch.Tensor] | None = None
        self.count = 0

    def update(self) -> None:
        """Add the current parameters to the mean."""
        with torch.no_grad():
            self.count += 1
            if self.mean is None:
                self.mean = [p.detach().clone() for p in self.params]
            else:
                torch._foreach_lerp_(self.mean, [p.detach() for p in self.params], 1.0 / self.count)

    def reset(self) -> None:
        """Drop the running mean without touching the parameters."""
        self.mean, self.count = None, 0

    def copy_to(self) -> None:
        """Overwrite the parameters with their mean and start a new average."""
        if self.mean is not None:
            with torch.no_grad():
                torch._foreach_copy_(self.params, self.mean)
        self.mean, self.count = None, 0
