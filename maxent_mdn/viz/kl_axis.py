"""How KL(q ‖ p*) is drawn on a log axis, the same way in every accuracy figure.

A Monte Carlo KL estimate can be at or below 0 (then drawn at :data:`KL_FLOOR`),
and a run that diverged has KL ``inf`` (then drawn at a ``ceiling``, when the
figure shows diverged runs). Dotted lines mark issue 19's targets, 0.01 and 0.02.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

__all__ = ["KL_FLOOR", "KL_TARGETS", "draw_kl_targets", "kl_shown"]

#: where a KL estimate at or below it is drawn
KL_FLOOR = 1e-4
#: the accuracy targets drawn as dotted lines
KL_TARGETS = (0.01, 0.02)


def kl_shown(kl: pd.Series, ceiling: float | None = None) -> pd.Series:
    """KL clipped to ``[KL_FLOOR, ceiling]`` for a log axis.

    Example:
        >>> kl_shown(pd.Series([-0.001, 0.05, float("inf")]), ceiling=10.0).tolist()
        [0.0001, 0.05, 10.0]
    """
    return kl.clip(lower=KL_FLOOR, upper=ceiling)


def draw_kl_targets(ax: plt.Axes) -> None:
    """Dotted horizontal lines at :data:`KL_TARGETS`."""
    for level in KL_TARGETS:
        ax.axhline(level, color="0.5", lw=0.8, ls=":")
