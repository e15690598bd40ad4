r"""Pre-flight: call every statistic once on flow samples *with gradients*, before training.

The solver differentiates :math:`\mathbb E_q[T(x)]` through reparameterized
samples, so a statistic must be a differentiable torch function of ``x``. The
feasibility check evaluates statistics on grid points without gradients, where
``np.log(x)`` on a tensor still works; the first training step would then fail
deep inside autograd. :func:`check_statistics` catches, in well under a second,
each way a statistic can break the solver, and names the constraint and the fix:

- it raises, e.g. numpy called on a tensor that requires grad (``np.log(x)``);
- it returns no tensor, the wrong shape or an integer dtype;
- it is not finite at samples inside the support (``log`` of a negative number);
- it is detached from ``x`` (``.detach()``, ``.item()``, a comparison such as
  ``(x > 0).float()``, a ``torch.no_grad`` block), or its gradient is zero at
  every sample (``torch.sign``, ``torch.round``): the solver would get no
  direction from that row.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .spec import MaxEntProblem, SpecError

__all__ = ["StatisticError", "check_statistics"]

_TORCH_HINT = "use torch operations on x, e.g. x.log() or torch.log(x) instead of np.log(x)"
_SMOOTH_HINT = (
    "the solver follows gradients of E[T(x)], so T must be a differentiable torch function of x; "
    "for an indicator use a smooth surrogate such as torch.sigmoid((x - a) / 0.01)"
)


class StatisticError(SpecError):
    """A constraint statistic that the solver cannot train with; the message names it and the fix."""


def _call(c: object, label: str, x: Tensor) -> Tensor:
    try:
        return c.evaluate(x)  # type: ignore[attr-defined]
    except Exception as err:  # the user's function: say which constraint failed and how, not a traceback
        text = str(err)
        if "numpy" in text.lower():
            raise StatisticError(f"constraint {label!r} calls numpy on x: {_TORCH_HINT}") from err
        if isinstance(err, TypeError | ValueError) and text.startswith("constraint "):
            raise StatisticError(text) from err  # Expectation.evaluate's own check (shape, dtype, type)
        raise StatisticError(
            f"constraint {label!r}: fn raised {type(err).__name__} on samples of shape {tuple(x.shape)}: {err}"
        ) from err


def check_statistics(problem: MaxEntProblem, x: Tensor) -> None:
    """Raise :class:`StatisticError` unless every statistic is a finite, differentiable torch function at ``x``.

    Args:
        problem: the constraints to check.
        x: samples ``(n, D)`` inside the support (e.g. from the untrained flow);
            they are detached and made a leaf that requires grad.

    Example:
        >>> import numpy as np
        >>> from maxent_mdn import Expectation, Positive
        >>> bad = MaxEntProblem(1, [Expectation(lambda x: np.log(x[..., 0]), 0.0, name="log")], Positive())
        >>> check_statistics(bad, torch.rand(8, 1) + 0.5)
        Traceback (most recent call last):
        ...
        maxent_mdn.problem.preflight.StatisticError: constraint 'log' calls numpy on x: use torch operations ...
    """
    x = x.detach().clone().requires_grad_(True)
    for c in problem.constraints:
        label = c.name or "constraint"
        with torch.enable_grad():
            out = _call(c, label, x)
        bad = ~torch.isfinite(out.detach())
        if bad.any():
            i = int(bad.any(-1).nonzero()[0, 0])
            raise StatisticError(
                f"constraint {label!r} is not finite at {int(bad.any(-1).sum())} of {x.shape[0]} samples inside "
                f"{problem.support!r} (e.g. x = {x[i].tolist()} gives {out[i].tolist()}); "
                "a statistic must be finite on the whole support"
            )
        if not out.requires_grad:
            raise StatisticError(
                f"constraint {label!r} does not depend differentiably on x (it was detached: .detach(), .item(), "
                f".numpy(), torch.no_grad or a comparison such as x > 0); {_SMOOTH_HINT}"
            )
        for k in range(out.shape[1]):
            (grad,) = torch.autograd.grad(out[:, k].sum(), x, retain_graph=True, allow_unused=True)
            if grad is None or not bool((grad != 0).any()):
                row = f"{label}[{k}]" if out.shape[1] > 1 else label
                raise StatisticError(
                    f"constraint {row!r} has zero gradient at every one of {x.shape[0]} samples "
                    f"(a step function such as torch.sign, torch.round or torch.floor); {_SMOOTH_HINT}"
                )
