"""The picture of one solve: density.png for one, two and more free coordinates."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from maxent_mdn import Covariance, MaxEntProblem, Mean, Simplex, make_flow
from maxent_mdn.problem import LogMean
from maxent_mdn.reference import DirichletReference, GaussianReference
from maxent_mdn.viz import plot_density
from maxent_mdn.viz.corner import corner_figure


@pytest.mark.parametrize("dim", [3, 6])
def test_corner_plot_for_three_or_more_coordinates(tmp_path: Path, dim: int) -> None:
    cov = np.eye(dim) + 0.3
    problem = MaxEntProblem(dim, [Mean([0.0] * dim), Covariance(cov.tolist(), mean=[0.0] * dim)], name="g")
    reference = GaussianReference([0.0] * dim, cov)
    flow = make_flow(dim, transform="coupling", layers=2, hidden=8)
    path = plot_density(flow, problem, reference, tmp_path / "density.png", samples=reference.sample(5000))
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 600 and image.shape[1] > 600  # k x k panels (k = min(dim, 4)), not one


def test_corner_plot_on_the_simplex_uses_the_reference_draws(tmp_path: Path) -> None:
    problem = MaxEntProblem(5, [LogMean([-2.0] * 5)], Simplex(), name="dirichlet-5")
    reference = DirichletReference([1.5] * 5)
    flow = make_flow(5, transform="coupling", layers=2, hidden=8, support=Simplex())
    with torch.no_grad():
        samples = flow.sample((4000,))
    assert plot_density(flow, problem, reference, tmp_path / "d.png", samples=samples).is_file()


def test_corner_figure_panels_legend_and_colour_bar() -> None:
    rng = np.random.default_rng(0)
    flow, ref = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    fig = corner_figure(flow, ref, [(-4.0, 4.0)] * 4, [f"x{i}" for i in range(4)], "t")
    assert len(fig.axes) == 4 * 4 and fig.axes[1 * 4 + 3].child_axes  # the colour bar: inset in panel (1, 3)
    legend = fig.axes[3].get_legend()
    assert [t.get_text() for t in legend.get_texts()][:2] == ["flow samples", "reference marginal"]
    with pytest.raises(ValueError, match="at least 3 coordinates"):
        corner_figure(flow[:, :2], None, [(-4.0, 4.0)] * 2, ["a", "b"], "t")
