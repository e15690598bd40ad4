"""Learned versus reference density: the picture of one solve."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from ..model import MaxEntModel
from ..problem.spec import MaxEntProblem
from ..problem.support import Simplex
from ..reference import Reference
from .corner import corner_figure
from .save import save_figure

__all__ = ["plot_density", "plot_exact_density"]

_LEARNED, _REFERENCE = "#1f77b4", "#d62728"


def _full_coords(problem: MaxEntProblem, free: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Problem coordinates for grid points of the free coordinates, and which lie in the support."""
    pts = torch.from_numpy(free)
    if isinstance(problem.support, Simplex):
        last = 1.0 - pts.sum(-1, keepdim=True)
        pts = torch.cat([pts, last], -1)
    return pts, problem.support.contains(pts).numpy()


def _log_density(fn: object, pts: torch.Tensor, inside: np.ndarray) -> np.ndarray:
    out = np.full(pts.shape[0], -np.inf)
    if inside.any():
        with torch.no_grad():
            out[inside] = fn(pts[torch.from_numpy(inside)]).double().cpu().numpy()  # type: ignore[operator]
    return out


def _flow_log_prob(flow: MaxEntModel) -> object:
    kwargs = {"num_nested": 4096}  # the Gumbel-MoG's independent nested batch; exact densities ignore it
    param = next(flow.parameters())

    def fn(x: torch.Tensor) -> torch.Tensor:
        return flow.log_prob(x.to(param), **kwargs)

    return fn


def _range(samples: np.ndarray, problem: MaxEntProblem, clip: bool = False) -> list[tuple[float, float]]:
    """The central 99.8% of the samples plus 15% each side (simplex: [0, 1], or clipped to it)."""
    lo, hi = np.quantile(samples, 0.001, axis=0), np.quantile(samples, 0.999, axis=0)
    pad = 0.15 * (hi - lo)
    box = [(float(a - p), float(b + p)) for a, b, p in zip(lo, hi, pad, strict=True)]
    if isinstance(problem.support, Simplex):
        box = [(max(0.0, a), min(1.0, b)) for a, b in box] if clip else [(0.0, 1.0)] * len(box)
    return box


def _heat_map(
    fig: plt.Figure,
    ax: plt.Axes,
    density: np.ndarray,
    box: list[tuple[float, float]],
    vmax: float | None = None,
) -> None:
    """A 2-D density (``density[i, j]`` at ``(x1_i, x2_j)``) as a heat map on ``box``, with its colour bar."""
    (x_lo, x_hi), (y_lo, y_hi) = box
    image = ax.imshow(
        density.T,
        origin="lower",
        extent=(x_lo, x_hi, y_lo, y_hi),
        aspect="auto",
        cmap="mako",
        vmin=0,
        vmax=vmax,
    )
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="density")


def plot_density(
    flow: MaxEntModel,
    problem: MaxEntProblem,
    reference: Reference | None,
    path: str | Path,
    samples: torch.Tensor | None = None,
    grid_points: int = 161,
    max_corner: int = 4,
) -> Path:
    """Draw learned vs reference density.

    One free coordinate: histogram of flow samples, the flow's density and the
    reference density. Two: marginals on top (learned vs reference), the
    learned density and the reference density as heat maps below, on one
    colour scale. Three or more: a corner plot of the first ``max_corner``
    coordinates (:func:`~maxent_mdn.viz.corner.corner_figure`), against
    exact draws from the reference where it has a sampler.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    path = Path(path)
    if samples is None:
        samples = flow.sample((50_000,))
    xs = samples.double().cpu().numpy()
    free = problem.support.flow_dim(problem.dim)
    coords = xs[:, :free]
    title = f"{problem.name}: learned ({getattr(flow, 'label', type(flow).__name__)})"
    if reference is not None:
        title += f" vs reference ({reference.kind}, H* = {reference.entropy:.4f})"
    if free == 1:
        ((lo, hi),) = _range(coords, problem)
        grid = np.linspace(lo, hi, 801)[:, None]
        pts, inside = _full_coords(problem, grid)
        fig, ax = plt.subplots(figsize=(7, 4.2))
        sns.histplot(
            coords[:, 0],
            stat="density",
            bins=120,
            binrange=(lo, hi),
            color=_LEARNED,
            alpha=0.25,
            ax=ax,
            label="flow samples",
        )
        ax.plot(
            grid[:, 0],
            np.exp(_log_density(_flow_log_prob(flow), pts, inside)),
            color=_LEARNED,
            lw=2,
            label="flow density",
        )
        if reference is not None:
            ax.plot(
                grid[:, 0],
                np.exp(_log_density(reference.log_prob, pts, inside)),
                color=_REFERENCE,
                lw=2,
                ls="--",
                label="reference",
            )
        ax.set_xlabel("x")
        ax.legend()
    elif free == 2:
        (x_lo, x_hi), (y_lo, y_hi) = _range(coords, problem)
        gx, gy = np.linspace(x_lo, x_hi, grid_points), np.linspace(y_lo, y_hi, grid_points)
        mesh = np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
        pts, inside = _full_coords(problem, mesh)
        learned = np.exp(_log_density(_flow_log_prob(flow), pts, inside)).reshape(grid_points, grid_points)
        panels = [("learned density", learned)]
        if reference is not None:
            ref = np.exp(_log_density(reference.log_prob, pts, inside)).reshape(grid_points, grid_points)
            panels.append(("reference density", ref))
        fig, axes = plt.subplots(2, 2, figsize=(10, 8), gridspec_kw={"height_ratios": [1, 2.2]})
        for axis, (ax, grid) in enumerate(zip(axes[0], (gx, gy), strict=True)):
            sns.histplot(
                coords[:, axis],
                stat="density",
                bins=100,
                binrange=(grid[0], grid[-1]),
                color=_LEARNED,
                alpha=0.3,
                ax=ax,
                label="flow samples",
            )
            if reference is not None:
                step = grid[1] - grid[0]
                marginal = panels[1][1].sum(axis=1 - axis) * step
                ax.plot(grid, marginal, color=_REFERENCE, lw=2, ls="--", label="reference")
            ax.set_xlabel(f"x{axis + 1}")
            ax.legend(fontsize=8)
        vmax = max(float(np.nanmax(d)) for _, d in panels)  # one colour scale for both panels
        for ax, (name, dens) in zip(axes[1], panels, strict=False):
            _heat_map(fig, ax, dens, [(x_lo, x_hi), (y_lo, y_hi)], vmax)
            ax.set_title(name)
        if len(panels) == 1:
            axes[1][1].hist2d(
                coords[:, 0], coords[:, 1], bins=120, range=[[x_lo, x_hi], [y_lo, y_hi]], cmap="mako"
            )
            axes[1][1].set_title("flow samples")
    else:
        k = min(problem.dim, max_corner)
        shown = f"coordinates 1-{k} of {problem.dim}" if k < problem.dim else f"all {k} coordinates"
        ref_draws = None
        if reference is not None:
            try:
                ref_draws = reference.sample(100_000).numpy()[:, :k]
            except NotImplementedError:
                pass
        ranges = _range(xs[:, :k], problem, clip=isinstance(problem.support, Simplex))
        labels = [f"x{i + 1}" for i in range(k)]
        fig = corner_figure(xs[:, :k], ref_draws, ranges, labels, f"{title}\n{shown}")
        save_figure(fig, path, dpi=110)
        return path
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def plot_exact_density(
    reference: Reference,
    problem: MaxEntProblem,
    path: str | Path,
    samples: np.ndarray | torch.Tensor | None = None,
    points: int = 241,
) -> Path:
    """Draw an exact answer alone (``train --method grid``): a curve in 1D, a heat map in 2D.

    The range is the central 99.8% of ``samples`` (draws of the answer; 100,000 are drawn
    if none are given) plus a margin, as for a flow.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    path = Path(path)
    free = problem.support.flow_dim(problem.dim)
    if free > 2:
        raise ValueError(f"plot_exact_density draws one or two free coordinates, not {free}")
    draws = reference.sample(100_000) if samples is None else samples
    box = _range(np.asarray(draws, dtype=np.float64)[:, :free], problem)
    axes_pts = [np.linspace(lo, hi, 801 if free == 1 else points) for lo, hi in box]
    mesh = np.stack(np.meshgrid(*axes_pts, indexing="ij"), -1).reshape(-1, free)
    pts, inside = _full_coords(problem, mesh)
    density = np.exp(_log_density(reference.log_prob, pts, inside))
    title = f"{problem.name}: maximum-entropy density ({reference.kind}, H = {reference.entropy:.4f})"
    if free == 1:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ax.plot(axes_pts[0], density, color=_REFERENCE, lw=2)
        ax.fill_between(axes_pts[0], density, color=_REFERENCE, alpha=0.15)
        ax.set_xlabel("x")
        ax.set_ylabel("density")
    else:
        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        _heat_map(fig, ax, density.reshape(points, points), box)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path
