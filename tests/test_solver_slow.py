"""Statistical acceptance of the solver (slow): every shipped spec with a reference, default settings."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from maxent_mdn import Covariance, MaxEntProblem, Mean, load_spec
from maxent_mdn.training import solve

ROOT = Path(__file__).resolve().parents[1] / "constraints"
SPECS = sorted(p.stem for p in ROOT.glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
def test_default_solve_reaches_the_reference(
    spec: str, record_property: Callable[[str, object], None]
) -> None:
    problem = load_spec(ROOT / f"{spec}.py")
    start = time.perf_counter()
    result = solve(problem, progress=False, seed=0)
    seconds = time.perf_counter() - start
    assert result.reference is not None, "every shipped spec has a reference"
    # KL from the model's own density and, independently, from a nearest-neighbour entropy
    assert result.kl_to_reference <= 0.02, result.table()
    assert result.kl_knn <= 0.02, result.table()
    assert result.constraints["within_1pct"].all(), result.table()
    # the constraint test passed (`converged` also needs the duality gap <= 0.01: positive_inequality's flow
    # ends 0.016 nats short of H* with the inequality slack, and its certificate says so)
    assert result.constraints_met, result.table()
    # the certificate against the truth: the polished dual bound is H* (it bounds H* from above, up to
    # the low bias of importance sampling), so the gap measures how far the flow's entropy is from H*
    cert = result.certificate.certificate
    assert abs(cert.dual_bound - result.reference.entropy) <= 0.01 + 3 * cert.dual_bound_stderr, (
        result.table()
    )
    assert result.converged == (cert.gap <= 0.01 and cert.kl_upper <= 0.02), result.table()
    # its bound on the KL covers the truth (the Gumbel-MoG's KL uses the same nested density as the gap).
    # That bound is `kl_upper`, not `gap_upper`: with delta = E_q[T] - b, KL(q||p*) = H* - H(q) - eta*^T delta,
    # so the gap bounds the KL only up to the first-order cost of the violations, which `kl_upper` adds
    # (KL(q||p_eta-hat) = gap - eta-hat^T delta). A converged gaussian_3d with rows at 0.8 x their tolerance
    # measured gap -0.0098 +- 0.0040 (gap_upper 0.0012), kl_upper 0.0145, for a KL of 0.0034.
    assert cert.kl_upper >= result.kl_to_reference - 2 * result.kl_stderr, result.table()
    if spec == "exponential":  # and eta-hat is the closed form's: eta* = -1 / mean
        polished = result.certificate.polish
        assert abs(float(polished.eta[0]) + 0.5) <= 0.01 + 3 * float(polished.eta_stderr[0]), result.table()
    # wall-clock is measured, not asserted (a busy or slow machine must not fail the suite):
    # benchmarks/ reports it against the 5-minute goal
    record_property("seconds", seconds)
    if seconds > 300:
        warnings.warn(f"{spec}: solve took {seconds:.0f} s, over the 5-minute goal", stacklevel=1)
    if spec == "dirichlet":  # MEFN's case: H = -1.2443
        assert abs(result.entropy - (-1.2443)) < 0.01, result.table()


#: the first problems a new user is likely to write; seed 0 of each is in the test above
FIRST_PROBLEMS = ("gaussian_3d", "exponential", "truncated_normal", "beta")


@pytest.mark.long  # 1,635 s of CI's slow suite on 2 cores (four specs, two seeds): CI ran past its 90 minutes
@pytest.mark.parametrize("spec", FIRST_PROBLEMS)
def test_first_problems_reach_the_answer_for_every_seed(
    spec: str, record_property: Callable[[str, object], None]
) -> None:
    """Seeds 1 and 2 (seed 0 is above): KL <= 0.02 for both; converged with every constraint within 1% for at
    least one, so that with seed 0 at least 2 of 3 seeds meet the whole bar.

    Measured on 2 cores with 2 threads: exponential, truncated_normal and beta met it for 3 of 3 seeds;
    gaussian_3d for 2 of 3 (seed 1: KL 0.004, but it reported converged with covariance[2,2] at 1.5189 for
    1.5, 1.3% off: the convergence test's "indistinguishable" clause passes biases up to 2.5 standard
    errors, 0.8% on that row, and the flow's bias sits near that floor). On one thread all 3 met it.
    """
    complete = []
    for seed in (1, 2):
        result = solve(load_spec(ROOT / f"{spec}.py"), progress=False, seed=seed)
        assert result.kl_to_reference <= 0.02, result.table()
        assert result.kl_knn is None or result.kl_knn <= 0.02, result.table()
        complete.append(bool(result.converged and result.constraints["within_1pct"].all()))
    record_property("seeds_1_2_converged_within_1pct", complete)
    assert any(complete), f"{spec}: neither seed 1 nor seed 2 converged with every constraint within 1%"


@pytest.mark.long  # 986 s alone in CI's slow suite, which ran past its 90 minutes with it
def test_a_zuko_spline_flow_on_the_gumbel_mog_base_meets_the_built_in_bar(
    record_property: Callable[[str, object], None],
) -> None:
    """zuko's NSF (4 autoregressive spline layers, 16 bins, 64 x 64 hidden) through ``FromTorch`` on this
    project's Gumbel-MoG base, trained by ``solve(model=...)`` with the default settings on gaussian_2d, seeds
    0, 1, 2: the first-problems bar of the built-in flows (KL <= 0.02 by both estimates for every seed; converged
    with every constraint within 1% for at least 2 of 3).

    Measured (one thread): KL 0.0058 / 0.0085 / 0.0040, every constraint within 1%; seeds 0 and 2 stop
    converged at step 4250 (kl_upper 0.0196 and 0.0137), seed 1 trains to the budget and returns to step 3500
    (kl_upper 0.0230 > 0.02: not converged). With the stop check on 50,000 draws instead of the verdict's
    200,000, seeds 0 and 1 ended at kl_upper 0.0230 and 0.0205 and only seed 2 converged. Before the stop
    check (the constraint test alone) all three converged and seed 0 was 1.7% off on covariance[0,1].
    With the second stage (``gibbs_stage=True``, the built-in flows' default, not a brought-in model's) this
    test failed: 1 of 3 converged (seeds 0 and 1 did not).
    """
    zuko = pytest.importorskip("zuko")
    from maxent_mdn import Flow, FromTorch, GumbelMoG

    complete = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        nsf = zuko.flows.NSF(features=2, transforms=4, hidden_features=(64, 64), bins=16)
        flow = Flow(GumbelMoG(2, 8), [FromTorch(nsf.transform, dim=2)])
        result = solve(load_spec(ROOT / "gaussian_2d.py"), model=flow, progress=False, seed=seed)
        assert result.kl_to_reference <= 0.02, result.table()
        assert result.kl_knn <= 0.02, result.table()
        complete.append(bool(result.converged and result.constraints["within_1pct"].all()))
    record_property("converged_within_1pct", complete)
    assert sum(complete) >= 2, f"converged with every constraint within 1% for {complete} (seeds 0, 1, 2)"


@pytest.mark.slow
def test_a_gaussian_far_from_the_origin_on_its_own_scale() -> None:
    """Mean (10, 0, -5), standard deviations (3, 1, 0.2): without the standardization read off the targets the
    default solve ended at KL 205 (the splines are the identity beyond |x| = 10); with it, the problem is as
    easy as a standard one."""
    mean, sd = [10.0, 0.0, -5.0], [3.0, 1.0, 0.2]
    corr = [[1.0, 0.5, 0.3], [0.5, 1.0, -0.4], [0.3, -0.4, 1.0]]
    cov = [[corr[i][j] * sd[i] * sd[j] for j in range(3)] for i in range(3)]
    problem = MaxEntProblem(3, [Mean(mean), Covariance(cov, mean=mean)], name="far-gaussian")
    result = solve(problem, progress=False, seed=0)
    assert result.kl_to_reference <= 0.02, result.table()
    assert result.constraints["within_1pct"].all(), result.table()


@pytest.mark.slow
def test_the_certificate_stays_conservative_where_the_flow_falls_short() -> None:
    """Dirichlet D = 20 trained for 1,500 of its 6,000 steps (a quarter of the budget, half of ``min_outer``'s
    3,000): the flow falls short, and the gap's upper end still covers the truth and the run does not report
    converged.

    This is the claim the test made at the full budget when that budget left KL at 0.24 (one thread, seeds 0
    and 1: KL 0.236 and 0.246, gap_upper 0.415 and 0.994 at ESS 40% and 1.7%; the point gap plus two standard
    errors, 0.180, missed the KL at seed 0: importance sampling errs low). The full budget now ends near KL
    0.05 (0.011 with ``gibbs_stage``, below), so a short budget keeps the flow where the claim is tested, at a
    quarter of the cost.
    """
    from maxent_mdn.experiments.cases import dirichlet_case

    result = solve(dirichlet_case(dim=20), progress=False, seed=0, steps=1500)
    cert = result.certificate.certificate
    assert result.kl_to_reference > 0.02, f"the flow did not fall short: {result.table()}"
    assert math.isfinite(cert.gap_upper), result.table()
    assert cert.gap_upper >= result.kl_to_reference - 2 * result.kl_stderr, result.table()
    assert not result.converged, result.table()


@pytest.mark.scale
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_20_dimensional_dirichlet_reaches_its_answer_and_its_certificate_covers_the_truth(
    seed: int,
) -> None:
    """Dirichlet D = 20 with unequal alpha, default settings (the second stage, ``gibbs_stage``, on) and
    4,500 steps, each of seeds 0-2: KL <= 0.02 (issue 19's target), the certified bound ``kl_upper`` at least
    the KL (up to two standard errors) and not converged above 0.02.

    Measured (one thread, a 5-minute limit that ended the runs at 4,000-4,500 of the 6,000 steps; 4,500 is
    that budget made machine-independent): KL 0.0111 / 0.0113 / 0.0112 with the second stage; 0.052 / 0.050 /
    0.034 with the penalty to the end, 0.24 with the Gumbel-MoG base and no ``Tails``. As a test (one thread):
    passed, 434 s per seed. Marked ``scale``, not ``slow``: CI's 90 minutes do not hold it.
    """
    from maxent_mdn.experiments.cases import dirichlet_case

    result = solve(dirichlet_case(dim=20), progress=False, seed=seed, steps=4500)
    cert = result.certificate.certificate
    assert result.kl_to_reference <= 0.02, result.table()
    assert cert.kl_upper >= result.kl_to_reference - 2 * result.kl_stderr, result.table()
    assert not (result.converged and result.kl_to_reference > 0.02), result.table()


@pytest.mark.scale
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_product_of_eight_bimodal_quartics_reaches_its_answer(seed: int) -> None:
    """E x_i^2 = 1, E x_i^4 = 1.5 for i = 1..8 (256 modes), default settings (``gibbs_stage`` on) and
    9,000 steps, each of seeds 0-2: KL <= 0.01 (issue 19's target is 0.02) with every row within 1% of its
    target, and not converged above 0.02.

    9,000 steps is what ``maxent-mdn train``'s default 5 minutes, which have no step budget, reached on one
    uncontended thread of an AVX-512 EPYC, made machine-independent. The library's 6,000 steps with
    ``average = 0.8`` left seed 2 with a row at 1.12x its tolerance (KL 0.0027). Measured with the clock as
    the budget (``reproduce --only scale``, one thread): converged at 6,500 / 7,250 / 9,000 steps, KL 0.0015 /
    0.0023 / 0.0022, worst rows 0.70x / 0.47x / 0.91x. With ``average = 0.5`` and 6,000 steps: KL 0.0017 /
    0.0023 / 0.0028, worst rows 0.75%, 0.69%, 0.52%, none converged; with the penalty to the end 0.0146 /
    0.0183 / 0.0189. Marked ``scale``, not ``slow``: CI's 90 minutes do not hold it.
    """
    from maxent_mdn.experiments.scale_cases import quartic_product, quartic_product_reference

    result = solve(
        quartic_product(8),
        progress=False,
        seed=seed,
        steps=9000,
        reference=quartic_product_reference(8),
    )
    assert result.kl_to_reference <= 0.01, result.table()
    assert result.constraints["within_1pct"].all(), result.table()
    assert not (result.converged and result.kl_to_reference > 0.02), result.table()


@pytest.mark.slow  # issue 19's case, over three seeds, in CI (1,215 s of its slow suite on 2 cores)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_10_dimensional_dirichlet_reaches_its_answer_with_default_settings(seed: int) -> None:
    """Dirichlet D = 10 with unequal alpha (the scale experiment's case), default settings, each of seeds 0-2:
    KL <= 0.01 (issue 19's target is 0.02), and not converged above 0.02.

    Nine flow coordinates: ``base="auto"`` picks the Gaussian base. Measured (one thread, 5-minute limit):
    KL 0.0034 / 0.0040 / 0.0044, seeds 0 and 1 converged at 3000 and 3250 steps, seed 2 trained to 6000
    (``kl_upper`` 0.022); with the Gumbel-MoG base, the default before, 0.021 / 0.023 / 0.027.
    """
    from maxent_mdn.experiments.cases import dirichlet_case

    result = solve(dirichlet_case(dim=10), progress=False, seed=seed)
    assert result.config.base == "gaussian", result.config
    assert result.kl_to_reference <= 0.01, result.table()
    assert not (result.converged and result.kl_to_reference > 0.02), result.table()
