r"""``RADFlow``: a Real-and-Discrete flow (Dinh, Sohl-Dickstein, Pascanu & Larochelle 2019)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import constraints

from ..._checks import choice, positive_int
from ..base import StandardNormal
from ..shapes import EventModule
from ..transforms import AffineCoupling, ElementwiseAffine, Permutation, SplineCoupling, Transform
from .fold import Fold

__all__ = ["RAD_COUPLINGS", "RADFlow", "make_rad"]

#: the continuous layers a RAD flow may put between its folds: the paper's affine couplings, or splines
RAD_COUPLINGS: tuple[str, ...] = ("coupling", "spline")

Layer = Transform | Fold


class RADFlow(EventModule):
    r"""Standard normal :math:`z_0` pushed through bijections and RAD folding layers.

    Sampling draws the piece of every :class:`Fold` from its gating network;
    the density is exact and needs no sum over pieces:

    .. math::

        \log q(x) = \log p_Z(z_0) + \sum_{\text{folds}} \big[\log p(k_l \mid z_l) + \log|\det \partial f_l/\partial x_l|\big]
                    - \sum_{\text{bijections}} \log|\det \partial g_l/\partial z_{l-1}|.

    Gradients for the maximum-entropy objective: the continuous part is
    reparameterized (:math:`x = f_k^{-1}(z)` is differentiable at the drawn
    :math:`k`); the draw of :math:`k` is discrete, so :meth:`rsample_with_score`
    also returns :math:`\sum_l \log p(k_l \mid z_l)` for a score-function
    (REINFORCE) term with a baseline — unbiased, unlike a relaxation of
    :math:`k`, which would break the exactness of the density. What neither
    term sees is the jump of the admissible set at the image boundaries (a
    measure-zero set of :math:`z`).

    Args:
        base: the latent distribution (default :math:`\mathcal N(0, I)`).
        layers: bijections and folds in sampling order.

    Example:
        >>> flow = make_rad(2)
        >>> x, log_q = flow.rsample_and_log_prob(64)
        >>> torch.allclose(flow.log_prob(x.detach()), log_q, atol=1e-4)
        True
    """

    discrete = True
    #: the pathwise gradient misses the discrete draw of the pieces (``rsample_with_score`` supplies that term)
    has_rsample = False

    def __init__(self, base: nn.Module, layers: Sequence[Layer]) -> None:
        super().__init__()
        dim = base.dim
        for i, layer in enumerate(layers):
            if not isinstance(layer, Transform | Fold):
                raise TypeError(f"layer {i} is a {type(layer).__name__}, not a Transform or Fold")
            dim_in = layer.dim_in if isinstance(layer, Transform) else layer.dim
            if dim_in != dim:
                raise ValueError(f"layer {i} ({type(layer).__name__}) expects dimension {dim_in}, gets {dim}")
            dim = layer.dim_out if isinstance(layer, Transform) else layer.dim
        self.base = base
        self.layers = nn.ModuleList(layers)
        self.dim = dim

    @property
    def support(self) -> constraints.Constraint:
        """Where the samples live: the last bijection's ``codomain`` (folds keep :math:`\\mathbb R^D`)."""
        last = self.layers[-1] if len(self.layers) else None
        return last.codomain if isinstance(last, Transform) else constraints.real_vector

    @property
    def temperature(self) -> float | None:
        """``None``: RAD's pieces are drawn exactly, with no relaxation to anneal."""
        return None

    @property
    def uses_nested_batch(self) -> bool:
        """No: RAD's density is exact."""
        return False

    def evaluation_kwargs(self, num_nested: int) -> dict[str, object]:
        """None needed: the density is exact."""
        return {}

    def rsample_with_score(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        r"""``n`` samples, :math:`\log q(x)`, and :math:`\sum_l \log p(k_l \mid z_l)` (with its graph)."""
        z, log_q = self.base.rsample_and_log_prob(n)
        log_gate = torch.zeros_like(log_q)
        for layer in self.layers:
            if isinstance(layer, Fold):
                z, ladj, lg = layer.decode(z)
                log_gate = log_gate + lg
                log_q = log_q + lg
            else:
                z, ladj = layer(z)
            log_q = log_q - ladj
        return z, log_q, log_gate

    def rsample_and_log_prob(
        self, n: int | torch.Size | tuple[int, ...], estimator: str | None = None, **_: object
    ) -> tuple[Tensor, Tensor]:
        """Samples ``n + event_shape`` (an int ``n``: ``(n, D)``) and their exact log-density ``n``.

        ``estimator`` is accepted and ignored.
        """
        shape = self.sample_shape_of(n)
        x, log_q, _ = self.rsample_with_score(shape.numel())
        return x.reshape(shape + self.event_shape), log_q.reshape(shape)

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        """Samples of shape ``sample_shape + (D,)`` (reparameterized given the drawn pieces)."""
        shape = torch.Size(sample_shape)
        x, _, _ = self.rsample_with_score(shape.numel())
        return x.reshape(shape + self.event_shape)

    def log_prob(self, x: Tensor, **_: object) -> Tensor:
        r"""Exact :math:`\log q(x)` at points ``(..., D)``."""
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"expected points of shape (..., {self.dim}), got {tuple(x.shape)}")
        z = x.reshape(-1, self.dim)
        total = z.new_zeros(z.shape[0])
        for layer in reversed(self.layers):
            if isinstance(layer, Fold):
                z, ladj, lg = layer.encode(z)
                total = total + ladj + lg
            else:
                z, ladj = layer.inverse(z)
                total = total + ladj
        return (self.base.log_prob(z) + total).reshape(x.shape[:-1])


def make_rad(
    dim: int,
    layers: int = 4,
    pieces: int = 3,
    hidden: int = 64,
    last: Transform | list[Transform] | None = None,
    transform: str = "coupling",
    bins: int = 8,
    bound: float = 10.0,
) -> RADFlow:
    """A RAD flow: an elementwise affine layer, ``layers`` x (fold, coupling, permutation), then ``last``.

    ``transform`` is the coupling between the folds: ``"coupling"`` (affine, as
    in the paper) or ``"spline"`` (rational-quadratic with ``bins`` bins on
    :math:`[-B, B]`, ``B = bound``: the same continuous layers as the spline
    flows, so that a comparison separates the discrete latent from the
    strength of the layers). ``last`` is an optional final bijector, or a list
    of them (e.g. a standardization, then the map onto a constrained support).

    Example:
        >>> make_rad(1).sample((3,)).shape
        torch.Size([3, 1])
        >>> make_rad(2, transform="spline", bins=4).sample((3,)).shape
        torch.Size([3, 2])
    """
    positive_int("dim", dim)
    choice("transform", transform, RAD_COUPLINGS)
    bins = positive_int("bins", bins)
    stack: list[Layer] = [ElementwiseAffine(dim)]
    for i in range(positive_int("layers", layers)):
        stack.append(Fold(dim, pieces=pieces, hidden=hidden))
        if transform == "coupling":
            stack.append(AffineCoupling(dim, hidden=hidden))
        else:
            stack.append(SplineCoupling(dim, bins=bins, bound=bound, hidden=hidden))
        if dim > 1 and i < layers - 1:
            stack.append(Permutation(dim))
    stack.extend([] if last is None else last if isinstance(last, list) else [last])
    return RADFlow(StandardNormal(dim), stack)
