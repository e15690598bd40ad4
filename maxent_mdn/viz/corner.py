"""Corner plot of a solve in three or more dimensions: marginals and pairwise densities, against the answer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy.ndimage import gaussian_filter

__all__ = ["corner_figure"]

_LEARNED, _REFERENCE = "#1f77b4", "#d62728"


def _density_1d(x: np.ndarray, lo: float, hi: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    counts, edges = np.histogram(x, bins=bins, range=(lo, hi))
    return 0.5 * (edges[1:] + edges[:-1]), counts / (len(x) * (edges[1] - edges[0]))


def _density_2d(x: np.ndarray, y: np.ndarray, box: list[tuple[float, float]], bins: int) -> np.ndarray:
    hist, _, _ = np.histogram2d(x, y, bins=bins, range=box)
    return hist / max(hist.max(), 1.0)


def corner_figure(
    flow: np.ndarray,
    reference: np.ndarray | None,
    ranges: list[tuple[float, float]],
    labels: list[str],
    title: str,
    bins: int = 60,
) -> Figure:
    r"""A :math:`k \times k` corner plot of flow samples, with the reference's where given.

    Diagonal: the 1-D marginal of each coordinate (flow samples as a filled
    histogram, the reference as a dashed line). Below it: each pair's 2-D
    histogram of flow samples, scaled to its own peak (one colour scale, 0 to
    1, with a colour bar), and the reference's lightly smoothed histogram as
    contours at 10%, 30%, 60% and 90% of its peak. Above: legend and colour bar.

    Args:
        flow: flow samples ``(n, k)``.
        reference: exact draws ``(m, k)`` from the answer, or ``None``.
        ranges: the plotted range of each coordinate.
        labels: axis label of each coordinate.
        title: the figure's title.
        bins: histogram bins per axis.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> fig = corner_figure(rng.normal(size=(500, 3)), None, [(-3, 3)] * 3, ["x1", "x2", "x3"], "demo")
        >>> len(fig.axes), len(fig.axes[5].child_axes)  # 3 x 3 panels; the colour bar is an inset of (1, 2)
        (9, 1)
    """
    k = flow.shape[1]
    if k < 3:
        raise ValueError(f"a corner plot needs at least 3 coordinates, got {k}")
    fig, axes = plt.subplots(k, k, figsize=(2.3 * k + 1.2, 2.3 * k), squeeze=False)
    mesh = None
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            ax.grid(False)
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                lo, hi = ranges[i]
                ax.hist(flow[:, i], bins=bins, range=(lo, hi), density=True, color=_LEARNED, alpha=0.35)
                if reference is not None:
                    centres, dens = _density_1d(reference[:, i], lo, hi, bins)
                    ax.plot(centres, dens, color=_REFERENCE, lw=1.5, ls="--")
                ax.set_yticks([])
                ax.set_xlim(lo, hi)
            else:
                box = [ranges[j], ranges[i]]
                dens = _density_2d(flow[:, j], flow[:, i], box, bins)
                mesh = ax.imshow(
                    dens.T,
                    origin="lower",
                    extent=(*ranges[j], *ranges[i]),
                    aspect="auto",
                    cmap="mako_r" if "mako_r" in plt.colormaps() else "viridis",
                    vmin=0.0,
                    vmax=1.0,
                )
                if reference is not None:
                    ref = gaussian_filter(_density_2d(reference[:, j], reference[:, i], box, bins), 1.0)
                    ref = ref / max(ref.max(), 1e-300)
                    xs = np.linspace(*ranges[j], bins + 1)
                    ys = np.linspace(*ranges[i], bins + 1)
                    centres = (0.5 * (xs[1:] + xs[:-1]), 0.5 * (ys[1:] + ys[:-1]))
                    ax.contour(
                        *centres, ref.T, levels=[0.1, 0.3, 0.6, 0.9], colors=_REFERENCE, linewidths=0.9
                    )
            if i == k - 1:
                ax.set_xlabel(labels[j])
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
            elif j > 0:
                ax.set_yticklabels([])
    handles = [Patch(color=_LEARNED, alpha=0.35, label="flow samples")]
    if reference is not None:
        handles.append(Line2D([], [], color=_REFERENCE, ls="--", label="reference marginal"))
        handles.append(Line2D([], [], color=_REFERENCE, lw=0.9, label="reference, 10/30/60/90% of peak"))
    axes[0, k - 1].legend(handles=handles, loc="upper right", frameon=False)
    if mesh is not None:  # in the empty panel below the legend
        cax = axes[1, k - 1].inset_axes((0.55, 0.05, 0.08, 0.9))
        fig.colorbar(mesh, cax=cax, label="flow density / panel peak")
        cax.yaxis.set_label_position("left")
    fig.suptitle(title, fontsize=10)
    return fig
