r"""``certificate.png``: the flow's entropy and the dual bound closing on the optimum over training."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .save import save_figure

__all__ = ["plot_certificate"]


def plot_certificate(
    history: pd.DataFrame, out: str | Path, reference_entropy: float | None = None, title: str = ""
) -> Path | None:
    r"""Plot :math:`H(q)` and :math:`D(\hat\eta)` per outer iteration (left) and the gap on a log scale (right).

    Weak duality puts the optimum :math:`H^*` between the two curves once the
    constraints hold (:math:`H(q) \le H^* \le D`), so the band they enclose
    is where the answer lies; the gap bounds :math:`\mathrm{KL}(q\,\|\,p^*)`.
    Reads the ``entropy_is``, ``dual_bound`` and ``gap`` columns the solver
    writes after each outer iteration; returns ``None`` (and draws nothing)
    when the history has none.

    Example:
        >>> import tempfile
        >>> h = pd.DataFrame({"step": [250, 500], "entropy_is": [1.0, 1.1], "dual_bound": [1.5, 1.12],
        ...                   "gap": [0.5, 0.02]})
        >>> plot_certificate(h, tempfile.mkdtemp() + "/certificate.png", reference_entropy=1.11).name
        'certificate.png'
    """
    if "dual_bound" not in history or history["dual_bound"].notna().sum() == 0:
        return None
    rows = history.dropna(subset=["dual_bound"])
    step = rows["step"].to_numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(step, rows["entropy_is"], "o-", ms=3, label="H(q), the flow's entropy")
    left.plot(step, rows["dual_bound"], "s-", ms=3, label="D(η̂), the dual bound")
    if reference_entropy is not None:
        left.axhline(
            reference_entropy, color="k", ls="--", lw=1, label=f"H* = {reference_entropy:.4f} (reference)"
        )
    both = np.concatenate([rows["entropy_is"].to_numpy(), rows["dual_bound"].to_numpy()])
    finite = both[np.isfinite(both)]
    if finite.size:  # early bounds can be far off: frame the last half of training
        late = np.concatenate(
            [rows["entropy_is"].to_numpy()[len(rows) // 2 :], rows["dual_bound"].to_numpy()[len(rows) // 2 :]]
        )
        late = late[np.isfinite(late)]
        lo, hi = (late.min(), late.max()) if late.size else (finite.min(), finite.max())
        pad = max(0.25 * (hi - lo), 0.01)
        left.set_ylim(lo - pad, hi + pad)
    left.set_xlabel("step")
    left.set_ylabel("nats")
    left.set_title("H(q) ≤ H* ≤ D(η̂) once the constraints hold")
    left.legend(fontsize=8)
    gap = rows["gap"].to_numpy()
    right.semilogy(step, np.clip(np.abs(gap), 1e-5, None), "o-", ms=3, color="C2")
    right.set_xlabel("step")
    right.set_ylabel("|gap| = |D(η̂) − H(q)| (nats)")
    right.set_title("the gap bounds KL(q ‖ p*)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out)
