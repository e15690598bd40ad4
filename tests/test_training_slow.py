"""Statistical check (slow): a Gumbel-MoG flow trained by reverse KL finds both modes of a mixture."""

from __future__ import annotations

import math
import multiprocessing as mp
import statistics

import pytest
import torch

from maxent_mdn import make_flow


def _target_log_prob(x: torch.Tensor) -> torch.Tensor:
    comps = torch.distributions.Normal(torch.tensor([-2.0, 2.0]), torch.tensor([0.5, 0.5]))
    return torch.logsumexp(comps.log_prob(x[..., :1]) + math.log(0.5), -1)


def _train(seed: int) -> tuple[float, float]:
    """Train by reverse KL on one thread; return (KL, mass right of 0) from 20,000 fresh draws."""
    torch.set_num_threads(1)  # the mode split depends on rounding, so the thread count is part of the seed
    torch.manual_seed(seed)
    # bound=5: the spline this test was written for (make_flow's default became 10 later)
    flow = make_flow(1, base="gumbel-mog", components=4, transform="spline", layers=2, tau=0.1, bound=5.0)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    decay = torch.optim.lr_scheduler.MultiStepLR(opt, [1500], gamma=0.1)
    for _ in range(3000):
        x, log_q = flow.rsample_and_log_prob(512, estimator="nested")
        loss = (log_q - _target_log_prob(x)).mean()  # E[log q_hat] >= E[log q]: an upper bound on KL
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay.step()
    with torch.no_grad():
        x, _ = flow.rsample_and_log_prob(20000, estimator=None)
        log_q = flow.log_prob(x, num_nested=8192)  # independent estimate: no own-term bias
        kl = (log_q - _target_log_prob(x)).mean().item()
        right = (x[:, 0] > 0).double().mean().item()
    return kl, right


@pytest.mark.slow
def test_reverse_kl_recovers_a_bimodal_target() -> None:
    """Eight seeds (two processes, one thread each): every run finds both modes, and the split is unbiased.

    The mass split varies from seed to seed by training, not by sampling (its standard error on 20,000
    draws is 0.35 points): seeds 0-7 gave 51.1, 44.6, 57.8, 56.6, 51.5, 51.0, 46.8 and 47.8% right-mode
    mass (sd 4.5 points; KL 0.001-0.014), so a 5-point bound on one seed held for 5 of 8 and the test
    used to pin seed 0. Asserted instead: every KL < 0.05 (as before, now for all eight), each mode
    holds at least 35% (no collapse), and the mean split is within 5 points of 50% (about 3 standard
    deviations of the mean of eight at that spread).
    """
    with mp.get_context("spawn").Pool(2) as pool:
        runs = pool.map(_train, range(8))
    kls, rights = zip(*runs, strict=True)
    assert max(kls) < 0.05, runs
    assert all(0.35 <= r <= 0.65 for r in rights), runs
    assert abs(statistics.mean(rights) - 0.5) < 0.05, runs
