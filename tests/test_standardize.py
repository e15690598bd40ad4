"""The fixed standardization read off the targets: its values, its place in the flow, save and reload."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from maxent_mdn import (
    Covariance,
    Expectation,
    Interval,
    MaxEntProblem,
    Mean,
    Positive,
    SecondMoment,
    Standardize,
    make_flow,
)
from maxent_mdn.problem import standardization
from maxent_mdn.training import solve
from maxent_mdn.training.outputs import load_model, save_run

TINY = {"steps": 20, "inner_steps": 10, "test_batches": 5, "test_batch_size": 200, "eval_samples": 500}
TINY.update(batch=64, transform="coupling", layers=2, hidden=8, components=2)


@pytest.mark.parametrize(
    ("constraints", "support", "expected"),
    [
        (
            [Mean([10.0, -5.0]), Covariance([[9.0, 0.0], [0.0, 0.04]], mean=[10.0, -5.0])],
            None,
            ([10.0, -5.0], [3.0, 0.2]),
        ),
        ([Covariance([[4.0]], mean=[2.0])], None, ([2.0], [2.0])),  # the covariance's own mean
        ([Mean(1.0), SecondMoment(5.0)], None, ([1.0], [2.0])),  # sqrt(E[x^2] - m^2)
        ([Mean([0.0, 0.0]), SecondMoment([[1.0, 0.0], [0.0, 1.0]])], None, None),  # standard already
        ([Mean(math.e**0.5)], Positive(), None),  # log m - 1/2 = 0: nothing to do
        ([Mean(100.0)], Positive(), ([math.log(100.0) - 0.5], [1.0])),
        ([Mean(0.3)], Interval(0.0, 1.0), None),  # bounded supports are left alone
        (
            [Expectation(lambda x: x[..., 0] ** 2, 4.0, name="m2")],
            None,
            None,
        ),  # a statistic of unknown meaning
        (
            [Expectation(lambda x: x[..., 0], 5.0, name="lo", relation=">="), SecondMoment(30.0)],
            None,
            ([0.0], [math.sqrt(30.0)]),
        ),
    ],
)
def test_location_and_scale_from_the_targets(constraints: list, support: object, expected: object) -> None:
    dim = constraints[0].size if isinstance(constraints[0], Mean) else 1
    result = standardization(MaxEntProblem(dim, constraints, support))
    if expected is None or result is None:
        assert result == expected
    else:
        for got, want in zip(result, expected, strict=True):
            assert got == pytest.approx(want)


def test_the_untrained_flow_starts_on_the_scale_of_the_answer() -> None:
    """The same flow with the fixed layer draws ``loc + scale * x`` (and its density shifts by -sum log scale)."""
    torch.manual_seed(0)
    plain = make_flow(2, transform="spline")
    torch.manual_seed(0)
    flow = make_flow(2, transform="spline", standardize=([10.0, -5.0], [3.0, 0.2]))
    assert isinstance(flow.transforms[-1], Standardize)
    with torch.no_grad():
        torch.manual_seed(1)
        x0, log_q0 = plain.rsample_and_log_prob(500)
        torch.manual_seed(1)
        x, log_q = flow.rsample_and_log_prob(500)
    torch.testing.assert_close(x, torch.tensor([10.0, -5.0]) + torch.tensor([3.0, 0.2]) * x0)
    torch.testing.assert_close(log_q, log_q0 - math.log(3.0 * 0.2))
    with pytest.raises(ValueError, match="standardize has 3 entries, the flow 2 coordinates"):
        make_flow(2, standardize=([0.0] * 3, [1.0] * 3))
    with pytest.raises(ValueError, match="positive, finite scales"):
        Standardize([0.0], [0.0])


def test_a_standardized_run_saves_and_reloads_to_the_same_density(tmp_path: Path) -> None:
    cov = [[9.0, 0.5], [0.5, 0.04]]
    problem = MaxEntProblem(2, [Mean([10.0, -5.0]), Covariance(cov, mean=[10.0, -5.0])], name="far")
    result = solve(problem, progress=False, **TINY)
    assert any(isinstance(t, Standardize) for t in result.flow.transforms)
    save_run(result, tmp_path, samples=1000, plot=False)
    flow, _ = load_model(tmp_path)
    points = torch.tensor([[10.0, -5.0], [12.0, -4.9]])
    torch.manual_seed(2)  # the same nested draws for both
    again = flow.log_prob(points, num_nested=64)
    torch.manual_seed(2)
    torch.testing.assert_close(again, result.flow.log_prob(points, num_nested=64))
    off = solve(problem, progress=False, standardize=False, **TINY)
    assert not any(isinstance(t, Standardize) for t in off.flow.transforms)
