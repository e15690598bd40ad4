r"""Score-function (REINFORCE) term for models with discrete latents (RAD's pieces)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["score_function_term"]


def _leave_one_out_mean(r: Tensor) -> Tensor:
    n = r.shape[0]
    if n < 2:
        return torch.zeros_like(r)
    return (r.sum() - r) / (n - 1)


def score_function_term(loss: Tensor, statistics: Tensor, log_q: Tensor, log_gate: Tensor) -> Tensor:
    r"""A zero-valued term whose gradient is :math:`\sum_i (\ell_i - b_i)\,\nabla \log p(k_i \mid z_i)`.

    For a sample drawn as :math:`z \sim p_Z`, :math:`k \sim p_\theta(k \mid z)`,
    :math:`x = f_k^{-1}(z)`, the gradient of :math:`\mathbb E[\ell]` is
    :math:`\mathbb E[\nabla \ell] + \mathbb E[\ell\, \nabla \log p_\theta(k \mid z)]`:
    the first part is what back-propagation through the reparameterized
    sample gives, this function supplies the second. The augmented-Lagrangian
    loss is affine in the per-sample statistics and log-densities (the
    penalty's second half-batch is a constant), so its per-sample
    contributions are :math:`\ell_i = a_i^\top T(x_i) + c_i \log q(x_i)` with
    :math:`(a_i, c_i) = \partial L / \partial (T_i, \log q_i)`. The baseline
    :math:`b_i` is the leave-one-out mean of :math:`\ell` over the same half of
    the batch (the halves carry different penalty coefficients), which keeps
    the estimator unbiased.

    Args:
        loss: the batch loss :math:`L = \sum_i \ell_i + \text{const}`.
        statistics: :math:`T(x)` ``(n, M)`` the loss was computed from.
        log_q: :math:`\log q(x)` ``(n,)`` the loss was computed from.
        log_gate: :math:`\sum_l \log p(k_l \mid z_l)` ``(n,)`` with its graph.

    Example:
        >>> theta = torch.zeros(2, requires_grad=True)
        >>> log_gate = torch.log_softmax(theta, 0)[torch.tensor([0, 1, 1])]
        >>> stats = torch.tensor([[1.0], [0.0], [0.0]], requires_grad=True)
        >>> log_q = torch.zeros(3, requires_grad=True)
        >>> term = score_function_term(stats.sum(), stats, log_q, log_gate)
        >>> float(term.detach())
        0.0
    """
    grads = torch.autograd.grad(loss, (statistics, log_q), retain_graph=True, allow_unused=True)
    a = torch.zeros_like(statistics) if grads[0] is None else grads[0]
    c = torch.zeros_like(log_q) if grads[1] is None else grads[1]
    r = ((a * statistics).sum(-1) + c * log_q).detach() * log_q.shape[0]
    half = r.shape[0] // 2
    baseline = torch.cat([_leave_one_out_mean(r[:half]), _leave_one_out_mean(r[half:])])
    return ((r - baseline) * (log_gate - log_gate.detach())).mean()
