"""Flows: densities from sampling and from inversion agree and integrate to one."""

from __future__ import annotations

import pytest
import torch

from maxent_mdn import Flow, GumbelMoG, Interval, Planar, Positive, Simplex, StandardNormal, make_flow
from maxent_mdn.model import BASES, MIXTURE_MAX_DIM, TRANSFORMS, resolve_base


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_sampled_and_inverted_log_prob_agree(transform: str) -> None:
    flow = make_flow(2, base="gaussian", transform=transform, dtype=torch.float64)
    # random non-identity parameters; larger spline perturbations (coupling or autoregressive) make
    # near-flat bins whose inverse is ill-conditioned (rounding error amplified by 1/slope), not wrong:
    # at 0.3 both spline flows are off by up to 0.8-8 nats, each layer's own round trip by 1e-8
    scale = 0.1 if transform in ("spline", "autoregressive") else 0.3
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn_like(p))
        x, log_q = flow.rsample_and_log_prob(64)
        torch.testing.assert_close(flow.log_prob(x), log_q, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("transform", ["spline", "planar"])
def test_flow_density_integrates_to_one_1d(transform: str) -> None:
    flow = make_flow(1, base="gaussian", transform=transform, layers=3, dtype=torch.float64)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.5 * torch.randn_like(p))
        grid = torch.linspace(-30, 30, 600001, dtype=torch.float64).unsqueeze(-1)
        mass = torch.trapezoid(flow.log_prob(grid).exp(), grid[:, 0]).item()
    assert abs(mass - 1) < 1e-6


def test_gumbel_flow_density_integrates_to_one_2d() -> None:
    flow = make_flow(2, base="gumbel-mog", components=3, transform="planar", layers=3, dtype=torch.float64)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
        axis = torch.linspace(-12, 12, 481, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1)
        dens = flow.log_prob(grid, num_nested=256).exp()  # one nested batch for the whole grid
        mass = torch.trapezoid(torch.trapezoid(dens, axis, dim=1), axis).item()
    assert abs(mass - 1) < 1e-3


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize(
    ("support", "dim", "inside"),
    [
        (None, 2, lambda x: torch.isfinite(x).all(-1)),
        (Positive(), 2, lambda x: (x > 0).all(-1)),
        (Interval(-1.0, 2.0), 1, lambda x: ((x > -1) & (x < 2)).all(-1)),
        (Simplex(), 3, lambda x: ((x > 0).all(-1)) & ((x.sum(-1) - 1).abs() < 1e-5)),
    ],
)
def test_make_flow_every_combination(
    base: str, transform: str, support: object, dim: int, inside: object
) -> None:
    flow = make_flow(dim, base=base, transform=transform, support=support, components=3)
    x, log_q = flow.rsample_and_log_prob(128)
    assert x.shape == (128, dim) and flow.event_shape == (dim,)
    assert inside(x).all() and torch.isfinite(log_q).all()
    (-log_q.mean()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())


def test_entropy_gradient_reaches_base_and_flow() -> None:
    flow = Flow(GumbelMoG(2, 3), [Planar(2), Planar(2)])
    x, log_q = flow.rsample_and_log_prob(256)
    (x.pow(2).sum(-1).mean() + log_q.mean()).backward()
    for name, p in flow.named_parameters():
        if name.endswith(".b"):
            continue  # planar bias may have exactly zero gradient at initialisation symmetry
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("flow_dim", [1, 2, 3, 4, 5, 9, 19])
def test_auto_base_is_the_mixture_up_to_four_flow_coordinates_and_gaussian_above(flow_dim: int) -> None:
    expected = GumbelMoG if flow_dim <= MIXTURE_MAX_DIM else StandardNormal
    assert MIXTURE_MAX_DIM == 4
    assert type(make_flow(flow_dim).base) is expected
    # on the simplex the flow has one coordinate fewer than the problem
    assert type(make_flow(flow_dim + 1, support=Simplex()).base) is expected
    for name in BASES:
        assert resolve_base(name, flow_dim) == name  # a named base is never replaced
    with pytest.raises(ValueError, match="unknown base 'mog'"):
        resolve_base("mog", flow_dim)


def test_construction_errors() -> None:
    with pytest.raises(
        ValueError, match="unknown base 'mog'; choose one of auto, gaussian, gumbel-mog, exact-mog, rad"
    ):
        make_flow(2, base="mog")
    with pytest.raises(ValueError, match="unknown transform 'maf'; choose one of planar"):
        make_flow(2, transform="maf")
    with pytest.raises(ValueError, match="Simplex support needs dim >= 2"):
        make_flow(1, support=Simplex())
    with pytest.raises(ValueError, match="layers must be a positive integer"):
        make_flow(2, layers=0)
    with pytest.raises(ValueError, match=r"transform 0 \(Planar\) expects dimension 3, gets 2"):
        Flow(StandardNormal(2), [Planar(3)])
    with pytest.raises(ValueError, match=r"expected points of shape \(\.\.\., 2\)"):
        make_flow(2).log_prob(torch.zeros(5, 3))
