"""Every bijector: inverse(forward(x)) == x and log|det J| == slogdet of the autograd Jacobian (float64)."""

from __future__ import annotations

from collections.abc import Callable

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from torch.autograd.functional import jacobian
from torch.distributions import transforms as dt

from maxent_mdn import (
    ActNorm,
    AffineCoupling,
    AutoregressiveSpline,
    ElementwiseAffine,
    Exp,
    FromTorch,
    Permutation,
    Planar,
    Radial,
    Sigmoid,
    SimplexMap,
    Softplus,
    SplineCoupling,
    Standardize,
    StickBreaking,
    Tails,
    Transform,
)
from maxent_mdn.model.transforms import rational_quadratic_spline

FACTORIES: dict[str, Callable[[int], Transform]] = {
    "planar": Planar,
    "radial": Radial,
    "affine": ElementwiseAffine,
    "actnorm": ActNorm,
    "affine-coupling": lambda d: AffineCoupling(d, hidden=8),
    "spline-coupling": lambda d: SplineCoupling(d, bins=5, bound=3.0, hidden=8),
    "autoregressive-spline": lambda d: AutoregressiveSpline(d, bins=5, bound=3.0, hidden=8),
    "permutation": lambda d: Permutation(d, torch.randperm(d)),
    "exp": Exp,
    "softplus": Softplus,
    "sigmoid": lambda d: Sigmoid(d, -2.0, 3.0),
    "simplex": SimplexMap,
    "stick-breaking": StickBreaking,
    "tails": Tails,
    "standardize": lambda d: Standardize(
        torch.linspace(-3.0, 5.0, d).tolist(), torch.linspace(0.3, 4.0, d).tolist()
    ),
    # torch.distributions transforms through the adapter: elementwise (event_dim 0) and on vectors
    "from-torch-tanh": lambda d: FromTorch(
        dt.ComposeTransform([dt.AffineTransform(0.5, 0.3), dt.TanhTransform()]), d
    ),
    "from-torch-affine": lambda d: FromTorch(
        dt.AffineTransform(
            torch.linspace(-1.0, 2.0, d).double(), torch.linspace(0.5, 3.0, d).double(), event_dim=1
        ),
        d,
    ),
}
try:  # zuko's neural spline flow (an autoregressive layer), when the optional dependency is installed
    import zuko

    FACTORIES["from-torch-zuko-nsf"] = lambda d: FromTorch(
        zuko.flows.NSF(d, transforms=1, hidden_features=(8,), bins=5).transform, d
    )
except ImportError:  # pragma: no cover - zuko is in the test extra
    pass


# random dimension, parameters (scale of a random perturbation away from the identity) and inputs
LAYER_CASES = given(
    dim=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.05, 1.0),
    spread=st.floats(0.1, 4.0),
)


def _randomized(name: str, dim: int, seed: int, scale: float) -> Transform:
    torch.manual_seed(seed)
    layer = FACTORIES[name](dim).double()
    with torch.no_grad():
        for p in layer.parameters():  # leave the identity initialisation
            p.copy_(scale * torch.randn_like(p))
    return layer.eval()


def _inputs(dim: int, seed: int, spread: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return spread * torch.randn(6, dim, generator=g, dtype=torch.float64)


def _autograd_logdet(layer: Transform, x: torch.Tensor) -> torch.Tensor:
    out = []
    for row in x:
        jac = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), row)
        jac = jac[: layer.dim_in]  # simplex: density w.r.t. the first D-1 output coordinates
        out.append(torch.linalg.slogdet(jac).logabsdet)
    return torch.stack(out)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@LAYER_CASES
def test_log_det_matches_autograd(name: str, dim: int, seed: int, scale: float, spread: float) -> None:
    layer = _randomized(name, dim, seed, scale)
    x = _inputs(dim, seed, spread)
    _, ladj = layer(x)
    torch.testing.assert_close(ladj, _autograd_logdet(layer, x), atol=1e-7, rtol=1e-7)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@LAYER_CASES
def test_inverse_roundtrip(name: str, dim: int, seed: int, scale: float, spread: float) -> None:
    layer = _randomized(name, dim, seed, scale)
    x = _inputs(dim, seed, spread)
    y, ladj = layer(x)
    x_back, ladj_inv = layer.inverse(y)
    torch.testing.assert_close(x_back, x, atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(ladj_inv, -ladj, atol=1e-7, rtol=1e-7)


def test_spline_is_identity_outside_bound_and_continuous_at_it() -> None:
    layer = _randomized("spline-coupling", 2, 3, 1.0)
    x = torch.tensor([[0.3, -7.0], [0.3, 9.0], [0.3, 3.0 - 1e-9], [0.3, 3.0 + 1e-9]], dtype=torch.float64)
    y, ladj = layer(x)
    assert y[0, 1] == -7.0 and y[1, 1] == 9.0
    torch.testing.assert_close(y[2], y[3], atol=1e-6, rtol=0)
    torch.testing.assert_close(ladj[2], ladj[3], atol=1e-6, rtol=0)


@pytest.mark.parametrize("bins", [1, 2, 5, 16])
@pytest.mark.parametrize("inverse", [False, True])
def test_spline_passes_through_its_knots_with_their_slopes(bins: int, inverse: bool) -> None:
    """A monotone rational-quadratic spline is fixed by its knots and knot slopes; they follow from the
    parameters by the module's formula (bins at least 2Bm wide, slopes m + softplus(raw + offset), end
    slopes 1), computed here in numpy apart from the implementation."""
    rng, bound, m = np.random.default_rng(bins), 3.0, 1e-3
    widths, heights = rng.normal(0.0, 1.5, (2, 3, bins))
    raw = rng.normal(0.0, 1.5, (3, bins - 1))

    def knots(v: np.ndarray) -> np.ndarray:
        size = m + (1.0 - m * bins) * np.exp(v) / np.exp(v).sum(-1, keepdims=True)
        return np.concatenate([np.zeros((3, 1)), np.cumsum(size, -1)], -1) * 2.0 * bound - bound

    xk, yk = knots(widths), knots(heights)
    slopes = np.pad(
        m + np.log1p(np.exp(raw + np.log(np.expm1(1.0 - m)))), ((0, 0), (1, 1)), constant_values=1.0
    )
    at, want = (yk, xk) if inverse else (xk, yk)
    tensor = [torch.from_numpy(np.ascontiguousarray(a)) for a in (widths, heights, raw)]
    out, ladj = rational_quadratic_spline(  # every knot of each of the three splines
        torch.from_numpy(at),
        *[t.unsqueeze(1).expand(3, bins + 1, t.shape[-1]) for t in tensor],
        bound=bound,
        inverse=inverse,
    )
    np.testing.assert_allclose(out.numpy(), want, atol=1e-9)
    np.testing.assert_allclose(ladj.numpy(), (-1.0 if inverse else 1.0) * np.log(slopes), atol=1e-8)


def test_planar_stays_invertible_for_adversarial_u() -> None:
    layer = Planar(2).double()
    with torch.no_grad():
        layer.w.copy_(torch.tensor([1.0, 0.0]))
        layer.u.copy_(torch.tensor([-50.0, 0.0]))  # w.u << -1 before the reparameterization
    with torch.no_grad():
        assert float(layer.w @ layer.u_hat()) > -1.0
    x = torch.linspace(-3, 3, 50, dtype=torch.float64).unsqueeze(-1).repeat(1, 2)
    y, _ = layer(x)
    assert torch.all(torch.diff(y[:, 0]) > 0)


@pytest.mark.parametrize(
    ("w_scale", "u_scale"), [(1e-3, 1.0), (1e-3, 100.0), (50.0, 1.0), (50.0, -100.0), (1.0, -50.0)]
)
def test_planar_log_det_and_inverse_hold_at_trained_like_extremes(w_scale: float, u_scale: float) -> None:
    # the parameters planar flows reach before they diverge in the mixture sweep (issue 20): a tiny w
    # (|u_hat| ~ 0.3/|w| then translates by hundreds), a steep w, and w.u_hat at its bound -1 + 1e-4
    gen = torch.Generator().manual_seed(0)
    layer = Planar(2).double()
    with torch.no_grad():
        layer.w.copy_(w_scale * torch.randn(2, generator=gen, dtype=torch.float64))
        layer.u.copy_(u_scale * torch.randn(2, generator=gen, dtype=torch.float64))
        layer.b.fill_(0.3)
    x = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    y, ladj = layer(x)
    for row, log_det in zip(x, ladj, strict=True):
        jac = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), row)
        torch.testing.assert_close(log_det, torch.linalg.slogdet(jac)[1], atol=1e-9, rtol=1e-9)
    x_back, ladj_inv = layer.inverse(y)
    torch.testing.assert_close(x_back, x, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(ladj_inv, -ladj, atol=1e-9, rtol=1e-9)


def test_planar_inverse_carries_gradients() -> None:
    layer = _randomized("planar", 2, 1, 0.8)
    y = _inputs(2, 1, 2.0)
    x, _ = layer.inverse(y)
    (gw,) = torch.autograd.grad(x.sum(), layer.w)
    eps = 1e-6
    with torch.no_grad():
        layer.w[0] += eps
        up = layer.inverse(y)[0].sum()
        layer.w[0] -= 2 * eps
        down = layer.inverse(y)[0].sum()
    torch.testing.assert_close(gw[0], (up - down) / (2 * eps), atol=1e-6, rtol=1e-5)
    _, ladj = layer(x)
    assert torch.isfinite(ladj).all()


@pytest.mark.parametrize("scale", [0.0, 0.5])
def test_spline_inverse_gradients_are_finite(scale: float) -> None:
    """The discarded branch of the quadratic root must not poison gradients (identity init: a == 0)."""
    layer = (
        _randomized("spline-coupling", 2, 0, scale)
        if scale
        else SplineCoupling(2, bins=5, bound=3.0).double()
    )
    y = torch.linspace(-5, 5, 41, dtype=torch.float64).unsqueeze(-1).repeat(1, 2).requires_grad_()
    x, ladj = layer.inverse(y)
    (x.sum() + ladj.sum()).backward()
    assert torch.isfinite(y.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_stick_breaking_carries_independent_betas_to_the_dirichlet() -> None:
    """The claim StickBreaking is chosen for: v_i ~ Beta(a_i, sum_{j>i} a_j) independent is Dirichlet(a)."""
    alpha = torch.tensor([0.5, 2.0, 1.2, 3.0], dtype=torch.float64)
    rest = alpha.flip(0).cumsum(0).flip(0)[1:]  # sum_{j>i} a_j
    layer = StickBreaking(3).double()
    y = 2.0 * torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x, ladj = layer(y)
    u = y - torch.arange(3, 0, -1, dtype=torch.float64).log()  # v = sigmoid(u)
    betas = torch.distributions.Beta(alpha[:-1], rest)
    # density of y: Beta densities of v times dv/du = v (1 - v)
    log_p_y = (betas.log_prob(torch.sigmoid(u)) + F.logsigmoid(u) + F.logsigmoid(-u)).sum(-1)
    torch.testing.assert_close(log_p_y - ladj, torch.distributions.Dirichlet(alpha).log_prob(x))


def test_make_flow_puts_a_simplex_map_of_choice_last() -> None:
    from maxent_mdn import Simplex, make_flow

    assert isinstance(make_flow(3, support=Simplex()).transforms[-1], StickBreaking)
    assert isinstance(
        make_flow(3, support=Simplex(), simplex_map="additive-logistic").transforms[-1], SimplexMap
    )
    with pytest.raises(ValueError, match="simplex_map"):
        make_flow(3, support=Simplex(), simplex_map="softmax")


@LAYER_CASES
def test_the_autoregressive_spline_is_triangular_and_moves_every_coordinate(
    dim: int, seed: int, scale: float, spread: float
) -> None:
    """x_d depends on z_<=d only (a zero upper triangle), and, unlike a coupling, on z_d in every coordinate."""
    layer = _randomized("autoregressive-spline", dim, seed, scale)
    for row in _inputs(dim, seed, spread):
        jac = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), row)
        assert bool((jac.triu(1) == 0).all())
    x = 0.5 * _inputs(dim, seed, 1.0)  # inside [-B, B]: no coordinate is the identity there
    assert bool(((layer(x)[0] - x).abs() > 0).all())


def test_an_autoregressive_flow_scores_its_own_samples_as_it_drew_them() -> None:
    """Sampling (one pass per layer) and the density of given points (D passes) agree, under every base."""
    from maxent_mdn import make_flow

    for base in ("gaussian", "exact-mog"):
        torch.manual_seed(0)
        flow = make_flow(3, base=base, transform="autoregressive", layers=2, bins=4, hidden=8).double()
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.3 * torch.randn_like(p))
            x, log_q = flow.rsample_and_log_prob(500)
            torch.testing.assert_close(flow.log_prob(x), log_q, atol=1e-8, rtol=1e-8)
