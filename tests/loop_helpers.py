"""A small solver state for tests that drive the training loop's pieces directly."""

from __future__ import annotations

import time

import numpy as np
import torch

from maxent_mdn import MaxEntProblem, SolverConfig, make_flow
from maxent_mdn.objective.lagrangian import AugmentedLagrangian
from maxent_mdn.training.averaging import TailAverage
from maxent_mdn.training.distributed import World
from maxent_mdn.training.loop import SolverState, Training
from maxent_mdn.training.progress import Progress


def small_training(
    problem: MaxEntProblem, c0: float = 1.0, **settings: object
) -> tuple[Training, SolverState]:
    """A two-layer coupling flow on a Gaussian base, 40 steps of 64 in inner runs of 20, seed 0, one process."""
    torch.manual_seed(0)
    cfg = SolverConfig(**{"steps": 40, "inner_steps": 20, "batch": 64, "log_every": 5, **settings}).validate()
    flow = make_flow(problem.dim, base="gaussian", transform="coupling", layers=2, hidden=8)
    alm = AugmentedLagrangian(problem.targets, problem.relations, c0=c0)
    run = Training(
        problem,
        cfg,
        flow,
        alm,
        World(use_process_group=False),
        TailAverage(flow),
        Progress(cfg.steps, mode=False),
        np.random.default_rng(0),
        time.perf_counter(),
    )
    return run, SolverState(norms_before=alm.norms(torch.zeros(1, len(problem.labels))))
