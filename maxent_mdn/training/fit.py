r"""Density estimation: maximum-likelihood training of any model of this package on data.

Which log-density each model trains on and is scored with:

* Gaussian-base and exact-MoG flows, RAD: their exact density.
* Gumbel-MoG flows: training uses the *independent* nested estimate
  :math:`\log \frac1M \sum_j \mathcal N(z_0; \mu_j, \sigma_j)` with ``num_nested``
  fresh soft selections per step (the own-term ``nested`` estimate contains
  the sample's own component, which is unbounded for likelihood: a component
  can shrink onto a data point). The test score is the same estimate at a
  large nested batch (its Jensen bias is :math:`O(1/M)` and *lowers* the
  log-likelihood), reported next to eq. 1 (the hard mixture's density), which
  is exact only for :math:`\tau \to 0`.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import Tensor, nn

from .._checks import choice, positive_float, positive_int
from ..datasets import Dataset
from ..model import BASES, RAD_BASES, MaxEntModel, make_flow
from .progress import Progress

__all__ = ["MODELS", "FitResult", "fit", "log_likelihood", "make_density_model"]

MODELS: tuple[str, ...] = BASES  # the same names as the solver's bases


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def make_density_model(
    name: str, dim: int = 2, layers: int = 4, hidden: int = 64, components: int = 8
) -> nn.Module:
    """The models of the density-estimation comparison, at comparable parameter counts.

    ``gaussian``, ``gumbel-mog`` and ``exact-mog`` share one flow (``layers``
    rational-quadratic spline couplings, 8 bins, conditioners of width
    ``hidden``) and differ only in the base. ``rad`` has ``layers`` x (fold,
    affine coupling) and ``rad-spline`` ``layers`` x (fold, the same spline
    coupling), each with the conditioner width that brings its parameter
    count closest to the spline flow's (three networks per layer instead of one).

    Example:
        >>> counts = [sum(p.numel() for p in make_density_model(m).parameters()) for m in MODELS]
        >>> max(counts) / min(counts) < 1.1
        True
    """
    choice("model", name, MODELS)
    flow_kw = {
        "transform": "spline",
        "layers": layers,
        "bins": 8,
        "hidden": hidden,
        "components": components,
        "tails": False,  # the comparison's fixed architecture: its README results predate the tail layer
    }
    if name not in RAD_BASES:
        return make_flow(dim, base=name, **flow_kw)
    target = _count(make_flow(dim, base="gaussian", **flow_kw))
    rad_kw = {"base": name, "layers": layers, "bins": flow_kw["bins"]}
    widths = range(4, 4 * hidden + 1, 2)
    best = min(widths, key=lambda w: abs(_count(make_flow(dim, hidden=w, **rad_kw)) - target))
    return make_flow(dim, hidden=best, **rad_kw)


def log_likelihood(model: MaxEntModel, x: Tensor, num_nested: int = 8192, exact: bool = False) -> Tensor:
    """Per-point log-density ``(n,)`` in the model's scoring convention (see the module notes).

    ``exact=True`` scores a Gumbel-MoG flow with eq. 1 instead of the nested estimate.
    """
    return model.log_prob(x, num_nested=num_nested, exact=exact)


def _score(model: MaxEntModel, x: Tensor, num_nested: int, exact: bool = False, chunk: int = 4096) -> Tensor:
    with torch.no_grad():
        return torch.cat(
            [
                log_likelihood(model, x[i : i + chunk], num_nested, exact).double().cpu()
                for i in range(0, len(x), chunk)
            ]
        )


#: a held-out point this many nats below the median scores as if the model had no mass there
DOMINATING_NATS = 1000.0


def _warn_if_dominated(scores: Tensor, name: str) -> None:
    r"""Warn when a few held-out points with (numerically) no mass under the model decide the mean.

    RAD's gate can put :math:`\log q \approx -10^8` on a test point that the
    validation set never probed (the README's pinwheel seed 2: test LL
    :math:`-8.3\cdot 10^7` beside a validation LL of :math:`-2.56`). Such a mean
    says nothing about the other points, so it is named, with the mean without them.
    """
    low = scores < scores.median() - DOMINATING_NATS
    if low.any():
        warnings.warn(
            f"{name}: {int(low.sum())} of {len(scores)} test points score more than {DOMINATING_NATS:g} nats "
            f"below the median (worst {float(scores.min()):.3g}); the model puts almost no mass there and "
            f"they decide the mean test log-likelihood (without them: {float(scores[~low].mean()):.4f})",
            RuntimeWarning,
            stacklevel=3,
        )


@dataclass
class FitResult:
    """Outcome of :func:`fit`: test log-likelihood (mean ± standard error over test points) and the trace."""

    model: nn.Module
    test_ll: float
    test_ll_stderr: float
    test_ll_eq1: float | None
    val_ll: float
    parameters: int
    steps: int
    seconds: float
    history: pd.DataFrame = field(repr=False)

    def summary(self) -> dict[str, object]:
        """JSON-ready numbers (what ``result.json`` holds)."""
        return {
            "test_ll": self.test_ll,
            "test_ll_stderr": self.test_ll_stderr,
            "test_ll_eq1": self.test_ll_eq1,
            "val_ll": self.val_ll,
            "parameters": self.parameters,
            "steps": self.steps,
            "seconds": self.seconds,
        }


def fit(
    model: nn.Module,
    data: Dataset,
    steps: int = 3000,
    batch: int = 512,
    lr: float = 2e-3,
    num_nested: int = 256,
    eval_nested: int = 8192,
    eval_every: int = 250,
    patience: int = 4,
    seed: int = 0,
    progress: bool | None = None,
) -> FitResult:
    r"""Train ``model`` by maximum likelihood on ``data.train``, early-stopped on ``data.val``.

    Adam with cosine learning-rate decay over ``steps``; every ``eval_every``
    steps the validation log-likelihood is measured and the best parameters
    kept; training stops after ``patience`` evaluations without improvement.
    The best parameters are scored on ``data.test``.

    Example:
        >>> from maxent_mdn.datasets import load_dataset
        >>> from maxent_mdn.model import make_flow
        >>> data = load_dataset("moons", sizes=(256, 128, 128))
        >>> result = fit(make_flow(2, base="gaussian", transform="coupling", layers=2), data, steps=20,
        ...              eval_every=10, progress=False)
        >>> sorted(result.summary())[:2]
        ['parameters', 'seconds']
    """
    steps, batch = positive_int("steps", steps), positive_int("batch", batch)
    positive_float("lr", lr)
    eval_every, patience = positive_int("eval_every", eval_every), positive_int("patience", patience)
    if data.dim != getattr(model, "dim", data.dim):
        raise ValueError(f"the model has dimension {model.dim}, the data {data.dim}")
    torch.manual_seed(seed)
    param = next(model.parameters())
    train, val, test = (t.to(param) for t in (data.train, data.val, data.test))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    best, best_state, bad, rows = -math.inf, copy.deepcopy(model.state_dict()), 0, []
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    step = 0
    with Progress(steps, mode=progress, desc=f"fit {data.name}") as bar:
        while step < steps:
            idx = torch.randint(len(train), (batch,), generator=generator)
            loss = -log_likelihood(model, train[idx], num_nested).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"step {step}: the training log-likelihood went non-finite")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            bar.update(1)
            if step % eval_every == 0 or step == steps:
                val_ll = float(_score(model, val, num_nested=eval_nested // 4).mean())
                rows.append({"step": step, "train_ll": -float(loss.detach()), "val_ll": val_ll})
                bar.set_postfix(val=f"{val_ll:.3f}")
                if val_ll > best:
                    best, best_state, bad = val_ll, copy.deepcopy(model.state_dict()), 0
                else:
                    bad += 1
                    if bad >= patience:
                        break
    model.load_state_dict(best_state)
    scores = _score(model, test, eval_nested)
    _warn_if_dominated(scores, data.name)
    eq1 = float(_score(model, test, eval_nested, exact=True).mean()) if model.uses_nested_batch else None
    return FitResult(
        model=model,
        test_ll=float(scores.mean()),
        test_ll_stderr=float(scores.std() / math.sqrt(len(scores))),
        test_ll_eq1=eq1,
        val_ll=best,
        parameters=_count(model),
        steps=step,
        seconds=time.perf_counter() - start,
        history=pd.DataFrame(rows),
    )
