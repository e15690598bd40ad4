r"""Pairwise Gaussian log-densities as matrix products, and their streaming log-mean.

Everything the base densities need reduces to one quantity: for points
:math:`z_i \in \mathbb{R}^D` and diagonal Gaussians :math:`(m_j, s_j)`,

.. math::

    \ell_{ij} = \log \mathcal{N}(z_i; m_j, \operatorname{diag} s_j^2)
              = -\tfrac12 \big( z_i^2 \cdot p_j - 2\, z_i \cdot (m_j p_j) + m_j^2 \cdot p_j \big)
                - \textstyle\sum_d \log s_{jd} - \tfrac D2 \log 2\pi,
    \qquad p_j = s_j^{-2}.

The bracket is two matrix products and a row vector, so the :math:`n \times m`
matrix is built without the :math:`n \times m \times D` tensor of differences.
Both ``z`` and ``m`` are shifted by the (detached) mean of ``m`` first: the
value is shift-invariant, and centring removes most of the cancellation the
expansion suffers in float32 for points far from the origin.

:func:`log_mean_gaussian` reduces :math:`\ell` over the nested axis with a
streaming ``logsumexp`` over chunks of at most ``chunk_size`` columns, so the
peak memory is :math:`O(n \cdot \text{chunk})`. With gradients on and more than
one chunk, each chunk is recomputed in the backward pass
(:func:`torch.utils.checkpoint.checkpoint`) instead of kept.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = ["default_chunk_size", "gaussian_log_density_matrix", "log_mean_gaussian"]

_LOG_2PI = math.log(2.0 * math.pi)
#: number of matrix entries per chunk (16M entries: 64 MiB in float32).
_CHUNK_ENTRIES = 1 << 24


def default_chunk_size(n: int) -> int:
    """Number of nested columns per chunk for ``n`` rows (at least 64)."""
    return max(64, _CHUNK_ENTRIES // max(n, 1))


def gaussian_log_density_matrix(z: Tensor, loc: Tensor, scale: Tensor, shift: Tensor | None = None) -> Tensor:
    r"""All pairwise :math:`\log \mathcal{N}(z_i; m_j, \operatorname{diag} s_j^2)`.

    Args:
        z: points, shape ``(n, D)``.
        loc: means :math:`m_j`, shape ``(m, D)``.
        scale: standard deviations :math:`s_j > 0`, shape ``(m, D)``.
        shift: optional centre subtracted from ``z`` and ``loc`` (defaults to
            the detached mean of ``loc``); it changes rounding, not the value.

    Returns:
        Tensor of shape ``(n, m)``.

    Example:
        >>> z = torch.zeros(3, 2)
        >>> gaussian_log_density_matrix(z, torch.zeros(1, 2), torch.ones(1, 2)).shape
        torch.Size([3, 1])
    """
    if shift is None:
        shift = loc.detach().mean(0)
    zc = z - shift
    mc = loc - shift
    prec = scale.pow(-2)
    quad = zc.pow(2) @ prec.T - 2.0 * (zc @ (mc * prec).T) + (mc.pow(2) * prec).sum(-1)
    # the expansion may round a tiny positive quadratic form below zero
    quad = quad.clamp_min(0.0)
    log_norm = scale.log().sum(-1) + 0.5 * z.shape[-1] * _LOG_2PI
    return -0.5 * quad - log_norm


def _chunk_logsumexp(
    z: Tensor, loc: Tensor, scale: Tensor, shift: Tensor, start: int, exclude_diagonal: bool
) -> Tensor:
    ell = gaussian_log_density_matrix(z, loc, scale, shift)
    if exclude_diagonal:
        rows = torch.arange(start, start + loc.shape[0], device=z.device)
        cols = torch.arange(loc.shape[0], device=z.device)
        ell = ell.index_put((rows, cols), torch.tensor(-math.inf, dtype=ell.dtype, device=ell.device))
    return torch.logsumexp(ell, dim=-1)


def log_mean_gaussian(
    z: Tensor,
    loc: Tensor,
    scale: Tensor,
    *,
    exclude_diagonal: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Log of the average Gaussian density, :math:`\log \frac1m \sum_j \mathcal N(z_i; m_j, s_j)`.

    With ``exclude_diagonal=True`` (requires ``m == n``; row ``i`` pairs with
    column ``i``) the term :math:`j = i` is left out and the mean is over
    :math:`m - 1` terms: the leave-one-out estimate.

    Args:
        z: points, shape ``(n, D)``.
        loc: nested means, shape ``(m, D)``.
        scale: nested standard deviations, shape ``(m, D)``.
        exclude_diagonal: leave out the pair ``(i, i)``.
        chunk_size: columns per chunk (default: :func:`default_chunk_size`).

    Returns:
        Tensor of shape ``(n,)``.

    Example:
        >>> z = torch.randn(5, 2)
        >>> log_mean_gaussian(z, torch.zeros(4, 2), torch.ones(4, 2)).shape
        torch.Size([5])
    """
    n, m = z.shape[0], loc.shape[0]
    if exclude_diagonal and m != n:
        raise ValueError(f"leave-one-out needs as many nested terms as points, got {m} and {n}")
    count = m - 1 if exclude_diagonal else m
    if count < 1:
        raise ValueError("the nested average needs at least one term")
    chunk = chunk_size or default_chunk_size(n)
    shift = loc.detach().mean(0)
    pieces = []
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        # with exclude_diagonal the block's diagonal is (row start + j, column j)
        args = (z, loc[start:stop], scale[start:stop])
        pieces.append(_run_chunk(args, shift, start, exclude_diagonal, many=m > chunk))
    total = pieces[0] if len(pieces) == 1 else torch.logsumexp(torch.stack(pieces, -1), -1)
    return total - math.log(count)


def _run_chunk(
    args: tuple[Tensor, Tensor, Tensor], shift: Tensor, start: int, exclude_diagonal: bool, many: bool
) -> Tensor:
    z, loc, scale = args
    if many and torch.is_grad_enabled() and (z.requires_grad or loc.requires_grad or scale.requires_grad):
        return checkpoint(
            _chunk_logsumexp, z, loc, scale, shift, start, exclude_diagonal, use_reentrant=False
        )
    return _chunk_logsumexp(z, loc, scale, shift, start, exclude_diagonal)
