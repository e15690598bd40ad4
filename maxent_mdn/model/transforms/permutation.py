"""Fixed coordinate permutations between coupling layers."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._checks import positive_int
from .core import Transform

__all__ = ["Permutation"]


class Permutation(Transform):
    r"""Fixed permutation :math:`y = x_{\pi}`, :math:`\log|\det| = 0`.

    Args:
        dim: dimension.
        permutation: the index order; default reverses the coordinates.

    Example:
        >>> Permutation(3)(torch.tensor([[1.0, 2.0, 3.0]]))[0]
        tensor([[3., 2., 1.]])
    """

    def __init__(self, dim: int, permutation: Tensor | list[int] | None = None) -> None:
        super().__init__(positive_int("dim", dim))
        perm = torch.arange(dim - 1, -1, -1) if permutation is None else torch.as_tensor(permutation)
        if sorted(perm.tolist()) != list(range(dim)):
            raise ValueError(f"not a permutation of range({dim}): {perm.tolist()}")
        self.register_buffer("perm", perm.long())
        self.register_buffer("inv_perm", torch.argsort(perm).long())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[..., self.perm], x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y[..., self.inv_perm], y.new_zeros(y.shape[0])
