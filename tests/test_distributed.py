"""Data-parallel training on torch.distributed (2 gloo processes on the CPU)."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from maxent_mdn.model import make_flow
from maxent_mdn.objective.lagrangian import AugmentedLagrangian
from maxent_mdn.problem import load_spec, specs_dir
from maxent_mdn.training.distributed import World, finish_distributed, init_distributed

SIZE, LOCAL = 2, 64  # two ranks of 64 samples: a global batch of 128


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(base: str) -> tuple[torch.nn.Module, AugmentedLagrangian, object]:
    """The same flow and multipliers in every process (float64, non-trivial penalty)."""
    problem = load_spec(specs_dir() / "gaussian_2d.py")
    torch.manual_seed(0)
    flow = make_flow(2, base=base, components=3, transform="spline", layers=2, dtype=torch.float64)
    alm = AugmentedLagrangian(problem.targets, problem.relations, c0=3.0)
    alm.lam = torch.linspace(-0.5, 0.5, alm.lam.numel(), dtype=torch.float64)
    return flow, alm, problem


def _draw(flow: torch.nn.Module, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s base samples and nested parameters, drawn as ``rsample_and_log_prob`` draws them."""
    torch.manual_seed(100 + rank)
    if flow.base.__class__.__name__ == "GumbelMoG":
        sel = flow.base.select(LOCAL)
        return sel.loc + torch.randn_like(sel.loc) * sel.scale, sel.loc, sel.scale
    z = torch.randn(LOCAL, 2, dtype=torch.float64)
    return z, torch.zeros_like(z), torch.ones_like(z)


def _gradient_worker(rank: int, base: str, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(SIZE))
    torch.set_num_threads(1)
    world = init_distributed("cpu", timeout_s=60)
    flow, alm, problem = _setup(base)
    torch.manual_seed(100 + rank)
    gather = {"gather": world.gather} if base == "gumbel-mog" else {}
    x, log_q = flow.rsample_and_log_prob(LOCAL, estimator="nested", **gather)
    loss, _ = alm.loss(problem.statistics(x), log_q, world.sum)
    loss.backward()
    world.average_gradients(flow)
    torch.save({"loss": loss.detach(), **{n: p.grad for n, p in flow.named_parameters()}}, f"{out}.{rank}")
    finish_distributed()


@pytest.mark.parametrize("base", ["gumbel-mog", "gaussian"])
def test_a_data_parallel_step_has_the_single_process_gradient(base: str, tmp_path: Path) -> None:
    out = str(tmp_path / "grads")
    mp.spawn(_gradient_worker, args=(base, _free_port(), out), nprocs=SIZE, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(SIZE)]

    # the same global batch in one process: each half-batch is the union of the ranks' halves,
    # and the nested density is the direct formula over all 128 selections
    flow, alm, problem = _setup(base)
    draws = [_draw(flow, r) for r in range(SIZE)]
    h = LOCAL // 2
    z, loc, scale = (torch.cat([d[k][:h] for d in draws] + [d[k][h:] for d in draws]) for k in range(3))
    if base == "gumbel-mog":
        w = (z[:, None, :] - loc[None]) / scale[None]
        log_n = -0.5 * w.pow(2).sum(-1) - scale.log().sum(-1)[None] - math.log(2 * math.pi)
        log_p = torch.logsumexp(log_n, 1) - math.log(z.shape[0])
    else:
        log_p = -0.5 * z.pow(2).sum(-1) - math.log(2 * math.pi)
    x, ladj = flow.push(z)
    loss, _ = alm.loss(problem.statistics(x), log_p - ladj)
    loss.backward()

    for rank in ranks:  # every rank holds the same, single-process, gradient
        torch.testing.assert_close(rank["loss"], loss.detach(), rtol=1e-10, atol=1e-12)
        for name, p in flow.named_parameters():
            torch.testing.assert_close(rank[name], p.grad, rtol=1e-8, atol=1e-10, msg=name)


def test_one_process_world_is_the_identity() -> None:
    world = World()
    t = torch.randn(3, 2)
    assert world.gather(t) is t and world.sum(t) is t and world.local(1000, "batch") == 1000
    flow = _setup("gumbel-mog")[0]
    torch.manual_seed(1)
    x, log_q = flow.rsample_and_log_prob(LOCAL, gather=world.gather)
    torch.manual_seed(1)
    x2, log_q2 = flow.rsample_and_log_prob(LOCAL)
    torch.testing.assert_close(x, x2)
    torch.testing.assert_close(log_q, log_q2)


def test_distributed_needs_the_launcher(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maxent_mdn.cli import main

    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert main(["train", str(specs_dir() / "interval.py"), "--distributed", "--no-progress"]) == 2
    assert "torchrun --nproc_per_node N -m maxent_mdn" in capsys.readouterr().err


def test_a_custom_discrete_model_is_refused_before_data_parallel_training() -> None:
    """The rad base is refused from the settings; a RAD model passed as ``model=`` from the model itself."""
    from maxent_mdn import solve

    world = World(use_process_group=False)
    world.distributed = True  # what a torchrun process sees, without a process group
    problem = load_spec(specs_dir() / "interval.py")
    for base in ("rad", "rad-spline"):
        with pytest.raises(ValueError, match=f"not {base}$"):
            solve(problem, base=base, world=world, progress=False)
    with pytest.raises(ValueError, match="RADFlow draws a discrete variable"):
        solve(problem, model=make_flow(1, base="rad"), world=world, progress=False)


@pytest.mark.slow
def test_torchrun_solve_meets_the_single_process_bound(tmp_path: Path) -> None:
    """``torchrun --nproc_per_node 2 -m maxent_mdn train ... --distributed``: the README command, end to end."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += [
        "--master_port",
        str(_free_port()),
        "-m",
        "maxent_mdn",
        "train",
        str(specs_dir() / "interval.py"),
    ]
    command += ["--distributed", "--no-progress", "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["converged"]
    assert result["kl_to_reference"] <= 0.02 and result["kl_knn"] <= 0.02  # the slow single-process bound
    assert done.stdout.count("wrote ") == 1  # rank 0 alone writes and reports
