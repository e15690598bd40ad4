r"""Data-parallel solves on ``torch.distributed``: the collectives the solver needs, and nothing home-made.

With :math:`N` processes (ranks) each draws :math:`n/N` of the global batch of
:math:`n` samples. Every rank then computes the *same* global loss

.. math::

    L = \frac1n \sum_{i=1}^{n} \log \hat q(x_i)
        + \text{penalty}\Big(\tfrac1n \textstyle\sum_i T(x_i),\ \text{half-batch means}\Big),
    \qquad
    \log \hat p(z_{0,i}) = \log \frac1n \sum_{j=1}^{n} \mathcal N(z_{0,i}; \mu_j, \sigma_j),

where the sums over :math:`i` are all-reduced and the nested selections
:math:`(\mu_j, \sigma_j)` of all ranks are all-gathered, both with the
gradient-preserving collectives of ``torch.distributed.nn.functional``. The
backward pass of those collectives routes each rank's share of
:math:`\partial L / \partial(\text{its samples})` back to it, :math:`N` times
over (every rank's copy of :math:`L` contributes), so averaging the parameter
gradients over ranks gives exactly :math:`\nabla L`: the gradient of a
single-process step on the same global batch. The half-batches of the
penalty are the union of every rank's local halves.

Everything that decides the course of a solve (multipliers, penalty, the
convergence test, NaN checks, the temperature) is computed from reduced or
gathered values and is therefore identical on every rank, so no rank can take
a branch the others do not. Only rank 0 writes files and shows progress.

Launch (one machine, 2 processes; add ``--nnodes``/``--rdzv-endpoint`` for several)::

    torchrun --nproc_per_node 2 -m maxent_mdn train constraints/interval.py --distributed

Example (single process: the collectives are identities):
    >>> world = World()
    >>> world.size, world.rank, world.is_main
    (1, 0, True)
"""

from __future__ import annotations

import datetime
import os
import warnings

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["World", "finish_distributed", "init_distributed"]

# torch 2.13 marks these gradient-preserving collectives deprecated in favour of the private
# torch.distributed._functional_collectives; they remain the public API, so quiet that one notice
warnings.filterwarnings(
    "ignore", message=r"torch\.distributed\.nn\.functional\.\w+ is deprecated", category=FutureWarning
)


class World:
    """The ranks a solve runs on; with no process group, one process and identity collectives."""

    def __init__(self, use_process_group: bool = True) -> None:
        """``use_process_group=False``: this process alone, even inside an initialized process group."""
        self.distributed = use_process_group and dist.is_available() and dist.is_initialized()
        self.size = dist.get_world_size() if self.distributed else 1
        self.rank = dist.get_rank() if self.distributed else 0

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes outputs and shows progress)."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"World(rank={self.rank}, size={self.size})"

    def local(self, count: int, what: str) -> int:
        """This rank's share of a global ``count``, which must divide evenly."""
        if count % self.size:
            raise ValueError(f"{what} = {count} must be a multiple of the number of processes ({self.size})")
        return count // self.size

    def gather(self, tensor: Tensor) -> Tensor:
        """Concatenate every rank's ``tensor`` along dim 0, in rank order; gradients flow back to each rank."""
        if not self.distributed:
            return tensor
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(tensor.contiguous()), 0)

    def sum(self, tensor: Tensor) -> Tensor:
        """Sum ``tensor`` over ranks; gradients flow back to each rank."""
        if not self.distributed:
            return tensor
        from torch.distributed.nn.functional import all_reduce

        return all_reduce(tensor)

    def gather_values(self, tensor: Tensor) -> Tensor:
        """:meth:`gather` without gradients (for test statistics and flags)."""
        if not self.distributed:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, 0)

    def any(self, flags: Tensor) -> Tensor:
        """Elementwise "true on some rank" of a boolean tensor (the same answer on every rank)."""
        if not self.distributed:
            return flags
        counts = flags.to(torch.int32).clone()
        dist.all_reduce(counts)
        return counts > 0

    def average_gradients(self, module: nn.Module) -> None:
        """Replace every parameter gradient by its mean over ranks (one flat all-reduce)."""
        if not self.distributed:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast_parameters(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if not self.distributed:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor, 0)


def init_distributed(device: str = "cpu", timeout_s: float = 600.0) -> World:
    """Join the process group that ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...).

    The backend is ``nccl`` for CUDA devices and ``gloo`` otherwise. On CUDA each
    rank takes the GPU numbered by ``LOCAL_RANK``.
    """
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(
            f"--distributed needs the launcher's environment ({', '.join(missing)} not set); start it with "
            "torchrun --nproc_per_node N -m maxent_mdn train SPEC.py --distributed"
        )
    if not dist.is_available():
        raise ValueError("this build of torch has no torch.distributed")
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s))
    return World()


def finish_distributed(clean: bool = True) -> None:
    """Leave the process group; after a clean finish, wait for every rank first.

    Without the barrier a rank that tears its connections down while a peer is
    still finishing can take that peer down with ``SIGABRT`` (gloo).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if clean:
        dist.barrier()
    dist.destroy_process_group()
