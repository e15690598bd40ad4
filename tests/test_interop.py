"""Flows are torch.distributions: generic code, Independent, TransformedDistribution, supports, zuko's layers."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import (
    Distribution,
    Independent,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
    constraints,
    kl_divergence,
)
from torch.distributions import transforms as dt

from maxent_mdn import (
    ElementwiseAffine,
    ExactMoG,
    Exp,
    Flow,
    FromTorch,
    GumbelMoG,
    Interval,
    MaxEntProblem,
    Mean,
    Positive,
    Real,
    SecondMoment,
    Simplex,
    StandardNormal,
    Support,
    ToTorch,
    load_model,
    make_flow,
    make_rad,
    solve,
)
from maxent_mdn.model import support_bijector
from maxent_mdn.training.checkpoint import CheckpointError
from maxent_mdn.training.outputs import save_run

SUPPORTS = [Real(), Positive(), Interval(-1.0, 2.0), Simplex()]


def monte_carlo_kl(p: Distribution, q: Distribution, n: int) -> tuple[float, float]:
    """Generic code written against torch.distributions only: KL(p || q) and its standard error."""
    x = p.sample((n,))
    diff = p.log_prob(x) - q.log_prob(x)
    return float(diff.mean()), float(diff.std() / math.sqrt(n))


def _gaussian_flow(loc: torch.Tensor, scale: torch.Tensor) -> Flow:
    """N(loc, diag(scale^2)) as a flow (float64)."""
    return Flow(
        StandardNormal(loc.numel()).double(), [FromTorch(dt.AffineTransform(loc, scale), loc.numel())]
    )


@pytest.mark.parametrize(
    "model",
    [
        make_flow(2, base="gumbel-mog"),
        make_flow(2, base="exact-mog"),
        make_flow(2, base="gaussian"),
        make_rad(2),
    ],
    ids=["gumbel-mog", "exact-mog", "gaussian", "rad"],
)
def test_every_model_and_base_is_a_torch_distribution(model: Distribution) -> None:
    assert isinstance(model, Distribution) and isinstance(model.base, Distribution)
    assert (model.event_shape, model.batch_shape, model.base.event_shape) == ((2,), (), (2,))
    assert model.has_rsample == (not model.discrete)  # RAD's pathwise gradient misses its discrete draw
    x = model.sample((3, 4))
    assert x.shape == (3, 4, 2) and bool(model.support.check(x).all())
    assert model.log_prob(x).shape == (3, 4)
    x, log_q = model.rsample_and_log_prob((3, 4))  # a sample shape, as rsample takes
    assert (x.shape, log_q.shape) == ((3, 4, 2), (3, 4))


def test_generic_kl_code_accepts_a_flow_and_agrees_with_the_closed_form() -> None:
    """A flow that is N(m, diag s^2) against a correlated Gaussian: the Monte Carlo KL of generic code
    matches torch's closed form kl_divergence within 4 standard errors, both ways round."""
    torch.manual_seed(0)
    loc, scale = torch.tensor([0.5, -1.0], dtype=torch.float64), torch.tensor([1.5, 0.7], dtype=torch.float64)
    flow = _gaussian_flow(loc, scale)
    same = MultivariateNormal(loc, torch.diag(scale**2))
    other = MultivariateNormal(
        torch.zeros(2, dtype=torch.float64), torch.tensor([[2.0, 0.5], [0.5, 1.0]]).double()
    )
    for p, q, p_exact, q_exact in [(flow, other, same, other), (other, flow, other, same)]:
        kl, se = monte_carlo_kl(p, q, 20_000)
        assert abs(kl - float(kl_divergence(p_exact, q_exact))) <= 4 * se + 1e-12


def test_independent_and_transformed_distribution_wrap_a_flow() -> None:
    torch.manual_seed(1)
    flow = make_flow(2, base="exact-mog", dtype=torch.float64)  # a deterministic density, to compare exactly
    x = flow.sample((50,))
    wrapped = Independent(flow, 0)
    assert wrapped.event_shape == (2,)
    torch.testing.assert_close(wrapped.log_prob(x), flow.log_prob(x))
    loc, scale = torch.tensor([1.0, -2.0]).double(), torch.tensor([2.0, 0.5]).double()
    moved = TransformedDistribution(flow, [dt.AffineTransform(loc, scale, event_dim=1)])
    y = moved.rsample((7,))
    assert y.shape == (7, 2) and y.requires_grad  # reparameterized through the flow's parameters
    expected = flow.log_prob((y - loc) / scale) - scale.log().sum()
    torch.testing.assert_close(moved.log_prob(y), expected)


@pytest.mark.parametrize("support", SUPPORTS, ids=repr)
def test_a_layer_through_to_torch_gives_the_same_density_as_the_flow(support: Support) -> None:
    """TransformedDistribution(base, [ToTorch(support map)]) == Flow(base, [support map]), and the flow's
    support is the constraint of the problem's support."""
    torch.manual_seed(2)
    dim = 3
    flow = make_flow(dim, base="gaussian", support=support, dtype=torch.float64)
    assert str(flow.support) == str(support.constraint)
    free = support.flow_dim(dim)
    last = support_bijector(support, free)
    if last is None:
        return
    base = Independent(Normal(torch.zeros(free).double(), 1.0), 1)
    ours = Flow(StandardNormal(free).double(), [last.double()])
    theirs = TransformedDistribution(base, [ToTorch(last)])
    x = theirs.sample((20,))
    assert bool(theirs.support.check(x).all())
    torch.testing.assert_close(theirs.log_prob(x), ours.log_prob(x))


def test_support_bijectors_come_from_a_constraint_registry() -> None:
    assert isinstance(support_bijector(constraints.independent(constraints.positive, 1), 2), Exp)
    assert support_bijector(constraints.real_vector, 2) is None
    with pytest.raises(TypeError, match="no flow layer maps onto the support"):
        support_bijector(constraints.lower_cholesky, 2)
    with pytest.raises(TypeError, match="only the positive half-line"):
        support_bijector(constraints.greater_than(1.0), 2)


@pytest.mark.parametrize("data", [{"type": "Ball"}, {"type": "Interval", "low": 0.0}, "Real", {}])
def test_a_malformed_support_record_names_the_problem(data: object) -> None:
    with pytest.raises(ValueError, match="support"):
        Support.from_dict(data)  # type: ignore[arg-type]


def test_from_torch_rejects_what_is_not_a_transform() -> None:
    with pytest.raises(TypeError, match="FromTorch needs"):
        FromTorch(lambda x: x, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ToTorch needs"):
        ToTorch(dt.ExpTransform())  # type: ignore[arg-type]


def test_a_custom_model_trains_and_says_it_cannot_be_rebuilt_from_its_file(tmp_path) -> None:
    """solve(model=...) trains a model of one's own layers; its model file refuses load_model clearly."""
    torch.manual_seed(3)
    flow = Flow(GumbelMoG(1, 3), [FromTorch(dt.AffineTransform(0.0, 1.0), 1), ElementwiseAffine(1), Exp(1)])
    problem = MaxEntProblem(1, [Mean(1.0)], support=Positive(), name="exp")
    result = solve(
        problem, model=flow, steps=40, inner_steps=20, test_batches=5, eval_samples=500, progress=False
    )
    assert result.flow is flow and result.custom_model and result.summary()["base"] == "custom"
    save_run(result, tmp_path / "run", samples=200, plot=False)
    with pytest.raises(CheckpointError, match=r"solve\(model=...\)"):
        load_model(tmp_path / "run")


@pytest.mark.parametrize(
    "model, message",
    [
        (make_flow(2), r"events of shape \(2,\); the problem needs \(1,\)"),
        (make_flow(1, support=None), "outside the problem's support"),
        (torch.nn.Linear(1, 1), "must implement MaxEntModel"),
    ],
)
def test_a_model_that_does_not_fit_the_problem_is_refused(model: object, message: str) -> None:
    problem = MaxEntProblem(1, [Mean(1.0)], support=Positive())
    with pytest.raises((ValueError, TypeError), match=message):
        solve(problem, model=model, steps=10, progress=False)  # type: ignore[arg-type]


def test_a_zuko_spline_flow_on_a_gumbel_mog_base_trains_with_solve() -> None:
    """A short run: zuko's NSF as the flow's layers, this project's base, solve's loop (the accuracy test
    at default settings is in the slow suite)."""
    zuko = pytest.importorskip("zuko")
    torch.manual_seed(4)
    nsf = zuko.flows.NSF(1, transforms=2, hidden_features=(16,), bins=8)
    flow = Flow(GumbelMoG(1, 4), [FromTorch(nsf.transform, 1)])
    before = [p.detach().clone() for p in nsf.parameters()]
    problem = MaxEntProblem(1, [Mean(0.0), SecondMoment(1.0)], name="normal")
    result = solve(
        problem, model=flow, steps=60, inner_steps=30, test_batches=5, eval_samples=1000, progress=False
    )
    assert any(not torch.equal(b, p) for b, p in zip(before, nsf.parameters(), strict=True))
    assert math.isfinite(result.entropy) and result.certificate is not None


def test_exact_mog_base_is_a_distribution_with_the_mixture_density() -> None:
    base = ExactMoG(2, 3).double()
    z = base.sample((5,))
    torch.testing.assert_close(base.log_prob(z), base.exact_log_prob(z))
