"""Small conditioner networks for coupling layers."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MLP"]


class MLP(nn.Module):
    r"""Fully connected net :math:`\mathbb R^{d_\text{in}} \to \mathbb R^{d_\text{out}}` with a zero-initialised last layer.

    The zero last layer makes every coupling start as the identity. With
    ``in_features == 0`` (a coupling over one coordinate, nothing to condition
    on) it is a learned constant vector.

    Example:
        >>> MLP(2, 3)(torch.randn(4, 2)).shape
        torch.Size([4, 3])
        >>> MLP(0, 3)(torch.randn(4, 0)).shape
        torch.Size([4, 3])
    """

    def __init__(self, in_features: int, out_features: int, hidden: int = 64, depth: int = 2) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        if in_features == 0:
            self.net = None
            self.constant = nn.Parameter(torch.zeros(out_features))
            return
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        last = nn.Linear(width, out_features)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x: Tensor) -> Tensor:
        if self.net is None:
            return self.constant.expand(x.shape[0], self.out_features)
        return self.net(x)
