r"""The answer of a problem whose constraints split over independent blocks of coordinates.

If every constraint involves the coordinates of one block only, the entropy is
maximized block by block (:math:`H(p) \le \sum_b H(p_b)`, with equality for the
product of the marginals, which meets every constraint), so

.. math::

    p^*(x) = \prod_b p^*_b(x_b), \qquad H^* = \sum_b H^*_b .

This gives an exact reference in any dimension from references of one or two
coordinates (the grid): a product of :math:`D` bimodal quartics has
:math:`2^D` modes and a known answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .closed_form import Reference

__all__ = ["ProductReference"]


class ProductReference(Reference):
    r""":math:`p^*(x) = \prod_b p^*_b(x_b)` over consecutive blocks of coordinates.

    Args:
        parts: the blocks' answers, in coordinate order.
        dims: each block's number of coordinates.

    Example:
        >>> from maxent_mdn.reference import GaussianReference
        >>> one = GaussianReference([0.0], [[1.0]])
        >>> ref = ProductReference([one, one, one], [1, 1, 1])
        >>> round(ref.entropy, 4)  # 3 x (1/2) log(2 pi e)
        4.2568
        >>> ref.sample(5).shape
        torch.Size([5, 3])
    """

    kind = "product"

    def __init__(self, parts: Sequence[Reference], dims: Sequence[int]) -> None:
        if len(parts) != len(dims) or not parts:
            raise ValueError(
                f"a product needs one dimension per part, got {len(parts)} parts, {len(dims)} dims"
            )
        if any(int(d) < 1 for d in dims):
            raise ValueError(f"every block needs at least one coordinate, got dims {list(dims)}")
        self.parts, self.dims = list(parts), [int(d) for d in dims]
        self.edges = np.concatenate([[0], np.cumsum(self.dims)]).tolist()

    @property
    def entropy(self) -> float:
        return float(sum(p.entropy for p in self.parts))

    def log_prob(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.edges[-1]:
            raise ValueError(
                f"the product has {self.edges[-1]} coordinates, got points of shape {tuple(x.shape)}"
            )
        return sum(
            p.log_prob(x[..., a:b].double())
            for p, a, b in zip(self.parts, self.edges[:-1], self.edges[1:], strict=True)
        )

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """Independent draws of each block (block ``i`` seeded ``seed + 7919 i``), side by side."""
        return torch.cat([p.sample(n, seed=seed + 7919 * i).double() for i, p in enumerate(self.parts)], -1)

    @property
    def natural_params(self) -> dict[str, list]:
        return {"dims": self.dims, "parts": [p.natural_params for p in self.parts]}
