"""The picture of one density fit: data, model density, model samples."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..datasets import Dataset
from ..model import MaxEntModel
from .save import save_figure

__all__ = ["plot_fit"]


def plot_fit(
    model: MaxEntModel,
    data: Dataset,
    samples: np.ndarray,
    path: str | Path,
    title: str = "",
    points: int = 200,
) -> Path:
    """Three panels on the same axes: test data, the model's density on a grid, and model samples.

    Example:
        >>> import tempfile
        >>> from maxent_mdn.datasets import load_dataset
        >>> from maxent_mdn.model import make_flow
        >>> data = load_dataset("moons", sizes=(64, 64, 256))
        >>> flow = make_flow(2, base="gaussian", transform="coupling", layers=1)
        >>> out = plot_fit(flow, data, flow.sample((256,)).numpy(), tempfile.mkdtemp() + "/fit.png", points=20)
        >>> out.exists()
        True
    """
    test = data.test.numpy()
    lo, hi = np.quantile(test, 0.001, axis=0), np.quantile(test, 0.999, axis=0)
    pad = 0.15 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    gx, gy = np.linspace(lo[0], hi[0], points), np.linspace(lo[1], hi[1], points)
    xx, yy = np.meshgrid(gx, gy)
    grid = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], -1)).to(next(model.parameters()))
    with torch.no_grad():
        dens = torch.cat([model.log_prob(g, num_nested=2048) for g in grid.split(8192)]).exp()
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.6), sharex=True, sharey=True)
    kw = {"s": 1, "alpha": 0.3, "rasterized": True}
    axes[0].scatter(test[:5000, 0], test[:5000, 1], color="0.2", **kw)
    axes[0].set_title("test data")
    axes[1].pcolormesh(xx, yy, dens.reshape(xx.shape).cpu().numpy(), shading="auto", cmap="viridis")
    axes[1].set_title("model density")
    axes[2].scatter(samples[:5000, 0], samples[:5000, 1], color="#1f77b4", **kw)
    axes[2].set_title("model samples")
    for ax in axes:
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
