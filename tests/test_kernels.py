"""The matrix-product nested kernel against the direct n x m x D formula (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from maxent_mdn.objective import gaussian_log_density_matrix, log_mean_gaussian


def _direct(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    diff = (z[:, None, :] - loc[None]) / scale[None]
    return (-0.5 * diff.pow(2) - scale[None].log() - 0.5 * math.log(2 * math.pi)).sum(-1)


@pytest.mark.parametrize("dim", [1, 3, 16])
@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_matrix_matches_direct(dim: int, offset: float) -> None:
    g = torch.Generator().manual_seed(dim)
    z = offset + torch.randn(40, dim, generator=g, dtype=torch.float64)
    loc = offset + torch.randn(30, dim, generator=g, dtype=torch.float64)
    scale = torch.exp(torch.randn(30, dim, generator=g, dtype=torch.float64))
    torch.testing.assert_close(gaussian_log_density_matrix(z, loc, scale), _direct(z, loc, scale))


def test_float32_far_points_and_tiny_scales() -> None:
    g = torch.Generator().manual_seed(0)
    loc = 1e3 + torch.randn(20, 4, generator=g, dtype=torch.float64)
    scale = torch.full((20, 4), 1e-2, dtype=torch.float64)
    z = loc + scale * torch.randn(20, 4, generator=g, dtype=torch.float64)  # each point near its own mean
    ref = torch.logsumexp(_direct(z, loc, scale), -1)
    got = torch.logsumexp(gaussian_log_density_matrix(z.float(), loc.float(), scale.float()), -1)
    torch.testing.assert_close(got.double(), ref, atol=0.05, rtol=1e-3)


@pytest.mark.parametrize("exclude_diagonal", [False, True])
def test_chunked_streaming_matches_one_shot_values_and_gradients(exclude_diagonal: bool) -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(50, 3, generator=g, dtype=torch.float64, requires_grad=True)
    loc = torch.randn(50, 3, generator=g, dtype=torch.float64, requires_grad=True)
    log_scale = (0.3 * torch.randn(50, 3, generator=g, dtype=torch.float64)).requires_grad_()
    direct = _direct(z, loc, log_scale.exp())
    if exclude_diagonal:
        direct = direct.masked_fill(torch.eye(50, dtype=torch.bool), -math.inf)
    ref = torch.logsumexp(direct, -1) - math.log(49 if exclude_diagonal else 50)
    ref_grads = torch.autograd.grad(ref.sum(), (z, loc, log_scale))
    for chunk in (7, 50, 64):
        out = log_mean_gaussian(z, loc, log_scale.exp(), exclude_diagonal=exclude_diagonal, chunk_size=chunk)
        torch.testing.assert_close(out, ref)
        for got, want in zip(torch.autograd.grad(out.sum(), (z, loc, log_scale)), ref_grads, strict=True):
            torch.testing.assert_close(got, want)


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="leave-one-out needs as many nested terms as points"):
        log_mean_gaussian(torch.zeros(3, 1), torch.zeros(2, 1), torch.ones(2, 1), exclude_diagonal=True)
    with pytest.raises(ValueError, match="at least one term"):
        log_mean_gaussian(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), exclude_diagonal=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", [8, 64])
def test_rows_spanning_hundreds_of_nats(dtype: torch.dtype, chunk: int) -> None:
    """Terms far below a row's largest are clamped before ``exp`` (no subnormals); values and gradients hold."""
    g = torch.Generator().manual_seed(2)
    loc = torch.cat([torch.zeros(1, 2), 30.0 * torch.randn(39, 2, generator=g)]).double()
    scale = torch.exp(0.5 * torch.randn(40, 2, generator=g, dtype=torch.float64))
    z = torch.cat([loc[:20] + 0.1 * torch.randn(20, 2, generator=g, dtype=torch.float64), 80 + loc[:20]])
    leaves = [t.clone().requires_grad_() for t in (z, loc, scale)]
    ref = torch.logsumexp(_direct(*leaves), -1) - math.log(40)
    ref_grads = torch.autograd.grad(ref.sum(), leaves)
    cast = [t.detach().to(dtype).requires_grad_() for t in leaves]
    out = log_mean_gaussian(*cast, chunk_size=chunk)
    grads = torch.autograd.grad(out.sum(), cast)
    tol = {"rtol": 1e-4, "atol": 1e-3} if dtype == torch.float32 else {}
    torch.testing.assert_close(out.double(), ref, **tol)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got.double(), want, **tol)
