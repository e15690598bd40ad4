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
    """Eight seeds (two processes, one thread each): every KL < 0.05, the mass split within 5 points of 50/50
    in at least 6 of 8 and its median within 3 points.

    The split is a real spread of training, not sampling noise (its standard error on 20,000 draws is
    0.35 points): seeds 0-7 of this code gave 52%, 41%, 53%, 51%, 56%, 48%, 50%, 52% right-mode mass,
    two of eight more than 5 points off (the test used to pin seed 0).
    """
    with mp.get_context("spawn").Pool(2) as pool:
        runs = pool.map(_train, range(8))
    kls, rights = zip(*runs, strict=True)
    assert max(kls) < 0.05, runs
    off = [abs(r - 0.5) for r in rights]
    assert sum(o < 0.05 for o in off) >= 6, runs
    assert statistics.median(off) < 0.03, runs
