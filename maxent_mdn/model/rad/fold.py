r"""RAD's piecewise-invertible coupling layer with its gating network (Dinh et al. 2019).

The transformed half :math:`x_b` of the input goes through a coordinate-wise,
continuous, piecewise-linear "folding" function with :math:`K` (odd) pieces,

.. math::

    f(x) = v_{a(j)} + \sigma_j\,(x - t_{a(j)}) \quad \text{for } x \in [t_j, t_{j+1}),
    \qquad \sigma_j = (-1)^j s_j,\; s_j > 0,

with knots :math:`t_1 < \dots < t_{K-1}` (:math:`t_0 = -\infty`,
:math:`t_K = \infty`), :math:`v_i = f(t_i)` and :math:`a(j)` the piece's
anchor knot (its left knot; the first piece is anchored at :math:`t_1`).
Slopes alternate in sign, so the outer pieces map onto half-lines and every
inner piece folds back over them: each :math:`z` has between 1 and :math:`K`
preimages. Knots, slopes and :math:`v_1` come from a conditioner on
:math:`x_a` (the Jacobian stays triangular), as in a coupling layer.

The map :math:`x \mapsto (z, k) = (f(x), k(x))` is a bijection onto
:math:`\bigcup_k f(A_k) \times \{k\}`, so with a gating distribution
:math:`p(k \mid z)` that is zero on pieces whose image does not contain
:math:`z` the density is exact, with no sum over pieces:

.. math::

    \log p(x) = \log p_Z(z) + \sum_d \log p(k_d \mid z) + \sum_d \log s_{k_d}.

The gating is a product over transformed coordinates of softmaxes whose logits
come from a network on the whole :math:`z` of the layer, masked to the
admissible pieces of each coordinate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._checks import positive_int
from ..transforms.nets import MLP

__all__ = ["Fold"]

_GAP_INIT = math.log(math.expm1(0.2))  # softplus(_GAP_INIT) = 0.2


class Fold(nn.Module):
    r"""A RAD folding coupling layer on :math:`\mathbb R^D` with ``pieces`` (odd) pieces per coordinate.

    Directions follow the flow's: :meth:`decode` is the sampling direction
    (:math:`z \mapsto x`, drawing the piece), :meth:`encode` the density
    direction (:math:`x \mapsto z`, the piece is determined by :math:`x`).

    Args:
        dim: :math:`D`; the first ``dim // 2`` coordinates condition the rest
            (in one dimension the piece parameters are learned constants).
        pieces: :math:`K`, odd and at least 3.
        hidden: width of the conditioner and gating networks.
        scale_clamp: :math:`|\log s_j|` is soft-clamped to this.

    Example:
        >>> fold = Fold(2)
        >>> z = torch.randn(5, 2)
        >>> x, ladj, log_gate = fold.decode(z)
        >>> z_back, ladj_fwd, log_gate_back = fold.encode(x)
        >>> torch.allclose(z_back, z, atol=1e-5), torch.allclose(log_gate_back, log_gate, atol=1e-5)
        (True, True)
    """

    def __init__(self, dim: int, pieces: int = 3, hidden: int = 64, scale_clamp: float = 3.0) -> None:
        super().__init__()
        self.dim = positive_int("dim", dim)
        self.pieces = positive_int("pieces", pieces)
        if pieces < 3 or pieces % 2 == 0:
            raise ValueError(f"pieces must be odd and at least 3 (so both tails rise), got {pieces}")
        self.split = dim // 2
        self.width = dim - self.split
        # per transformed coordinate: t_1, K-2 gaps, K log-slopes, v_1
        self.conditioner = MLP(self.split, self.width * 2 * pieces, hidden)
        self.gate = MLP(dim, self.width * pieces, hidden)
        self.scale_clamp = scale_clamp
        signs = torch.tensor([(-1.0) ** j for j in range(pieces)])
        self.register_buffer("signs", signs)
        # anchor knot (0-based into t_1..t_{K-1}) of each piece: its left knot, t_1 for the first
        self.register_buffer("anchor", torch.tensor([max(j - 1, 0) for j in range(pieces)]))

    def _pieces(self, xa: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Knots ``(n, W, K-1)``, knot values ``(n, W, K-1)``, log-slopes ``(n, W, K)``."""
        k = self.pieces
        raw = self.conditioner(xa).reshape(xa.shape[0], self.width, 2 * k)
        t1, gaps_raw, log_s_raw, v1 = (
            raw[..., :1],
            raw[..., 1 : k - 1],
            raw[..., k - 1 : 2 * k - 1],
            raw[..., -1:],
        )
        gaps = F.softplus(gaps_raw + _GAP_INIT) + 1e-3  # inner pieces 0.2 wide at init: a mild fold
        log_s = self.scale_clamp * torch.tanh(log_s_raw / self.scale_clamp)
        knots = torch.cat([t1, t1 + gaps.cumsum(-1)], -1) - 0.5 * gaps.sum(-1, keepdim=True)
        slopes = self.signs * log_s.exp()  # signed slope of each piece
        # v_{i+1} = v_i + sigma_i * gap_i for the inner piece i (1-based) between t_i and t_{i+1}
        values = torch.cat([v1, v1 + (slopes[..., 1:-1] * gaps).cumsum(-1)], -1)
        return knots, values, log_s

    def _bounds(self, knots: Tensor) -> tuple[Tensor, Tensor]:
        inf = knots.new_full(knots.shape[:-1] + (1,), float("inf"))
        return torch.cat([-inf, knots], -1), torch.cat([knots, inf], -1)

    def _log_gate(self, z: Tensor, admissible: Tensor) -> Tensor:
        logits = self.gate(z).reshape(z.shape[0], self.width, self.pieces)
        return torch.log_softmax(logits.masked_fill(~admissible, float("-inf")), -1)

    def _preimages(self, zb: Tensor, knots: Tensor, values: Tensor, log_s: Tensor) -> tuple[Tensor, Tensor]:
        """Preimage of ``zb`` under every piece ``(n, W, K)`` and whether it lies in that piece."""
        t = knots[..., self.anchor]
        v = values[..., self.anchor]
        slopes = self.signs * log_s.exp()
        x_all = t + (zb.unsqueeze(-1) - v) / slopes
        lo, hi = self._bounds(knots)
        return x_all, (x_all >= lo) & (x_all < hi)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""Density direction: ``(z, log|det ∂z/∂x|, log p(k(x) | z))``, each log term ``(n,)``."""
        xa, xb = x[..., : self.split], x[..., self.split :]
        knots, values, log_s = self._pieces(xa)
        piece = (xb.unsqueeze(-1) >= knots).sum(-1, keepdim=True)  # k(x) in 0..K-1
        anchor = self.anchor[piece]
        slope = (self.signs * log_s.exp()).gather(-1, piece)
        zb = values.gather(-1, anchor) + slope * (xb.unsqueeze(-1) - knots.gather(-1, anchor))
        zb = zb.squeeze(-1)
        z = torch.cat([xa, zb], -1)
        _, admissible = self._preimages(zb, knots, values, log_s)
        admissible = admissible.scatter(
            -1, piece, True
        )  # k(x) is admissible; rounding must not say otherwise
        log_gate = self._log_gate(z, admissible).gather(-1, piece).squeeze(-1)
        return z, log_s.gather(-1, piece).squeeze(-1).sum(-1), log_gate.sum(-1)

    def decode(self, z: Tensor, piece: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        r"""Sampling direction: draw :math:`k \sim p(k \mid z)`, return ``(x, log|det ∂x/∂z|, log p(k | z))``.

        ``piece`` ``(n, W)`` fixes :math:`k` instead of drawing it (it must be admissible).
        The draw itself carries no gradient; :math:`x` is differentiable in
        :math:`z` and the layer's parameters at the drawn :math:`k`.
        """
        za, zb = z[..., : self.split], z[..., self.split :]
        knots, values, log_s = self._pieces(za)
        x_all, admissible = self._preimages(zb, knots, values, log_s)
        log_p = self._log_gate(z, admissible)
        if piece is None:
            with torch.no_grad():
                gumbel = -torch.log(-torch.log(torch.rand_like(log_p).clamp_min(1e-20)))
                piece = (log_p + gumbel).argmax(-1)
        piece = piece.unsqueeze(-1)
        xb = x_all.gather(-1, piece).squeeze(-1)
        ladj = -log_s.gather(-1, piece).squeeze(-1).sum(-1)
        return torch.cat([za, xb], -1), ladj, log_p.gather(-1, piece).squeeze(-1).sum(-1)
