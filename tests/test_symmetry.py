"""The certificate's reflection check: it sees the modes a flow misses, which no weight diagnostic can."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from maxent_mdn import Expectation, Interval, MaxEntProblem, Mean, Simplex, solve
from maxent_mdn.certify import certify, find_reflections, missing_mass
from maxent_mdn.experiments.mixture_cases import separated_modes, separated_modes_reference
from maxent_mdn.objective.lagrangian import AugmentedLagrangian
from maxent_mdn.training.verdict import final_certificate, why_not_converged

# modes-2d-sep16: p* is the product of two copies of exp(16 x^2 - 8 x^4) / Z (a = 8)
ETA = torch.tensor([16.0, 16.0, -8.0, -8.0], dtype=torch.float64)


def _two_of_four_corners(n: int, seed: int = 0) -> tuple[MaxEntProblem, Tensor, object]:
    """Draws and density of p* restricted to the corners (1, 1) and (-1, -1): every constraint met,
    KL(q || p*) = log 2 exactly (q = 2 p* on half the space)."""
    problem, ref = separated_modes(2, 16), separated_modes_reference(2, 16)
    x = ref.sample(n, seed=seed)
    x[:, 1] = x[:, 1].abs() * torch.sign(x[:, 0])

    def log_q(points: Tensor) -> Tensor:
        points = points.double()
        same = torch.sign(points[:, 0]) == torch.sign(points[:, 1])
        return torch.where(same, ref.log_prob(points) + math.log(2.0), -math.inf)

    return problem, x, log_q


def test_the_weights_cannot_see_the_missing_corners_and_the_reflection_check_can() -> None:
    problem, x, log_q = _two_of_four_corners(40_000)
    blind = certify(None, problem, ETA, draws=(x, log_q(x)))
    # the documented blind spot: constant weights, a "reliable" certificate, kl_upper far below log 2
    assert blind.ess > 0.999 and blind.reliable and blind.kl_upper < 0.05
    reflections = find_reflections(problem, x)
    assert reflections is not None and reflections.signs.shape == (4, 2)
    m, se = missing_mass(log_q, problem, ETA, x[:20_000], reflections)
    # q_S = p* exactly here, so both estimates are exact: m = log 2 to rounding
    assert m == pytest.approx(math.log(2.0), abs=1e-9) and se < 1e-9
    from dataclasses import replace

    seen = replace(blind, missing_mass=m, missing_mass_stderr=se)
    assert seen.kl_upper >= math.log(2.0) and not seen.reliable


class _Density(nn.Module):
    """A stand-in for a trained flow: only ``log_prob`` (and a parameter, for its dtype and device)."""

    def __init__(self, log_q: object) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.log_q = log_q

    def log_prob(self, x: Tensor, **_: object) -> Tensor:
        return self.log_q(x)


def test_the_verdict_refuses_a_flow_that_misses_reflected_modes() -> None:
    problem, x, log_q = _two_of_four_corners(40_000, seed=1)
    alm = AugmentedLagrangian(problem.targets, problem.relations)
    alm.lam = -ETA.to(alm.lam)  # multipliers whose Gibbs form is p*: eta = -lambda on == rows
    without = final_certificate(problem, alm, x, log_q(x))
    # fooled at any tolerance well below the true KL of log 2 = 0.69
    assert why_not_converged(True, without, gap_tol=0.05, kl_upper_tol=0.05) is None
    checked = final_certificate(problem, alm, x, log_q(x), flow=_Density(log_q))
    assert checked.certificate.missing_mass == pytest.approx(math.log(2.0), abs=1e-3)
    why = why_not_converged(True, checked, gap_tol=0.05, kl_upper_tol=0.05)
    assert why is not None and "reflected images" in why


def test_a_flow_that_covers_every_corner_unevenly_is_not_charged() -> None:
    # a four-Gaussian proposal on the corners, wider than the modes and with weights 40/10/25/25%:
    # it covers all of p*, so the missing mass is 0 up to sampling error, in 7 of 8 seeds within 3 se
    problem = separated_modes(2, 16)
    corners = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]], dtype=torch.float64)
    weights = torch.tensor([0.4, 0.1, 0.25, 0.25], dtype=torch.float64)
    sigma = 0.3
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(weights),
        torch.distributions.Independent(torch.distributions.Normal(corners, sigma), 1),
    )
    reflections = find_reflections(problem, mixture.sample((256,)))
    within = []
    for seed in range(8):
        torch.manual_seed(seed)
        x = mixture.sample((20_000,))
        m, se = missing_mass(mixture.log_prob, problem, ETA, x, reflections, seed=seed)
        assert abs(m) < 0.05
        within.append(abs(m) <= 3 * se)
    assert sum(within) >= 7


def test_which_reflections_are_found() -> None:
    x2 = torch.randn(64, 2, dtype=torch.float64)
    assert find_reflections(separated_modes(2, 8), x2).signs[0].tolist() == [1.0, 1.0]  # row 0: identity
    assert find_reflections(MaxEntProblem(1, [Mean(0.3)]), x2[:, :1]) is None  # E x breaks the reflection
    centred = MaxEntProblem(1, [Expectation(lambda x: (x[..., 0] - 0.5) ** 2, 0.05)], Interval(0.0, 1.0))
    about_half = find_reflections(centred, torch.rand(64, 1, dtype=torch.float64))
    assert about_half is not None and about_half.centre.tolist() == [0.5]
    simplex = MaxEntProblem(3, [Expectation(lambda x: x.log().sum(-1), -4.0)], Simplex())
    assert find_reflections(simplex, torch.full((8, 3), 1 / 3, dtype=torch.float64)) is None
    # one of two coordinates reflectable: 2 maps, the other coordinate untouched
    first = Expectation(lambda x: x[..., 0], 0.5)
    mixed = MaxEntProblem(2, [first, Expectation(lambda x: x.pow(2).sum(-1), 2.0)])
    assert find_reflections(mixed, x2).signs.tolist() == [[1.0, 1.0], [1.0, -1.0]]
    # 256 sign patterns in 8 coordinates: the identity and 15 distinct others
    many = find_reflections(separated_modes(8, 8), torch.randn(64, 8, dtype=torch.float64))
    assert many.signs.shape == (16, 8) and many.signs[0].eq(1).all()
    assert len({tuple(s.tolist()) for s in many.signs}) == 16


def test_a_solve_of_a_symmetric_problem_runs_the_check() -> None:
    tiny = {"steps": 40, "inner_steps": 20, "test_batches": 5, "test_batch_size": 200, "eval_samples": 4000}
    result = solve(separated_modes(1, 4), progress=False, batch=64, hidden=8, reference=False, **tiny)
    cert = result.certificate.certificate
    assert math.isfinite(cert.missing_mass) and cert.missing_mass != 0.0  # measured, not the default
    assert cert.missing_mass_stderr > 0.0


def test_a_reflection_check_that_fails_keeps_the_certificate_and_blocks_convergence() -> None:
    problem, x, log_q = _two_of_four_corners(20_000, seed=2)
    alm = AugmentedLagrangian(problem.targets, problem.relations)
    alm.lam = -ETA.to(alm.lam)

    def broken(points: Tensor) -> Tensor:
        raise RuntimeError("the density cannot be evaluated there")

    with pytest.warns(UserWarning, match="reflection check of the certificate failed"):
        checked = final_certificate(problem, alm, x, log_q(x), flow=_Density(broken))
    cert = checked.certificate
    assert math.isfinite(cert.gap) and math.isinf(cert.kl_upper) and not cert.reliable
    why = why_not_converged(True, checked, gap_tol=0.05, kl_upper_tol=0.05)
    assert why is not None and "reflection check failed" in why


class _TwoCorners(_Density):
    """The two-corner density of :func:`_two_of_four_corners` as a model the stop check can draw from."""

    def __init__(self) -> None:
        _, _, log_q = _two_of_four_corners(1)
        super().__init__(log_q)
        self.reference = separated_modes_reference(2, 16)

    def evaluation_kwargs(self, num_nested: int) -> dict[str, object]:
        return {}

    def rsample_and_log_prob(self, n: int, **_: object) -> tuple[Tensor, Tensor]:
        x = self.reference.sample(n, seed=int(torch.randint(2**31, ())))
        x[:, 1] = x[:, 1].abs() * torch.sign(x[:, 0])
        return x, self.log_q(x)


def test_the_stop_check_runs_the_reflection_check_only_where_it_can_change_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Missed reflected mass only adds to kl_upper: a stop refused without it needs no check, and a stop
    granted without it is refused with it (the two-corner flow: KL log 2)."""
    from maxent_mdn.training import SolverConfig, verdict

    calls = []

    def counted(*args: object, **kwargs: object) -> tuple[float, float]:
        calls.append(1)
        return missing_mass(*args, **kwargs)

    monkeypatch.setattr(verdict, "missing_mass", counted)
    problem, flow = separated_modes(2, 16), _TwoCorners()
    alm = AugmentedLagrangian(problem.targets, problem.relations)
    alm.lam = -ETA.to(alm.lam)
    torch.manual_seed(0)
    loose = SolverConfig(gap_tol=0.05, kl_upper_tol=0.05, stop_samples=40_000)
    check = verdict.certified_stop(flow, problem, alm, loose)
    assert check["stop"] == 0.0 and check["stop_kl_upper"] >= math.log(2.0) and len(calls) == 1
    strict = SolverConfig(gap_tol=1e-9, kl_upper_tol=1e-9, stop_samples=40_000)
    check = verdict.certified_stop(flow, problem, alm, strict)
    assert check["stop"] == 0.0 and check["stop_kl_upper"] < 0.05 and len(calls) == 1  # refused unchecked
