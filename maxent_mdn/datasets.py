r"""Seeded 2D toy datasets for density estimation, with fixed train/validation/test splits.

The five shapes are the common ones (FFJORD's toy data; Grathwohl et al. 2019),
drawn here once from a seeded generator with fixed sizes, so that a
log-likelihood reported on them compares across models and runs:

* ``8gaussians``: eight Gaussians (std 0.35) on a circle of radius 2.83;
* ``moons``: two interleaved half circles with noise 0.1, centred and scaled by 2;
* ``rings``: four concentric circles (radii 0.75 to 3) with noise 0.08,
  points in proportion to the radius;
* ``checkerboard``: uniform on the black squares of a 4 x 4 board on :math:`[-4, 4]^2`;
* ``pinwheel``: five spiral arms (radial std 0.3, tangential std 0.1, rate 0.25), scaled by 2.

Example:
    >>> data = load_dataset("moons", seed=0)
    >>> tuple(data.train.shape), tuple(data.val.shape), tuple(data.test.shape)
    ((10000, 2), (5000, 2), (20000, 2))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._checks import choice, positive_int

__all__ = ["DATASETS", "SIZES", "Dataset", "load_dataset"]

SIZES: tuple[int, int, int] = (10_000, 5_000, 20_000)


def _eight_gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
    angles = rng.integers(0, 8, n) * (2 * math.pi / 8)
    centres = 4.0 * np.stack([np.cos(angles), np.sin(angles)], -1)
    return (centres + 0.5 * rng.standard_normal((n, 2))) / math.sqrt(2.0)


def _moons(rng: np.random.Generator, n: int) -> np.ndarray:
    upper = rng.random(n) < 0.5
    t = rng.random(n) * math.pi
    x = np.where(upper, np.cos(t), 1.0 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], -1) + 0.1 * rng.standard_normal((n, 2))
    return 2.0 * (pts - np.array([0.5, 0.25]))


def _rings(rng: np.random.Generator, n: int) -> np.ndarray:
    radii = np.array([0.75, 1.5, 2.25, 3.0])
    ring = rng.choice(4, size=n, p=radii / radii.sum())
    t = rng.random(n) * 2 * math.pi
    pts = radii[ring, None] * np.stack([np.cos(t), np.sin(t)], -1)
    return pts + 0.08 * rng.standard_normal((n, 2))


def _checkerboard(rng: np.random.Generator, n: int) -> np.ndarray:
    x1 = rng.random(n) * 4 - 2
    x2 = rng.random(n) - rng.integers(0, 2, n) * 2.0 + np.floor(x1) % 2
    return 2.0 * np.stack([x1, x2], -1)


def _pinwheel(rng: np.random.Generator, n: int) -> np.ndarray:
    arms, rate = 5, 0.25
    feats = rng.standard_normal((n, 2)) * np.array([0.3, 0.1]) + np.array([1.0, 0.0])
    arm = rng.integers(0, arms, n)
    angle = arm * (2 * math.pi / arms) + rate * np.exp(feats[:, 0])
    cos, sin = np.cos(angle), np.sin(angle)
    rotated = np.stack([cos * feats[:, 0] - sin * feats[:, 1], sin * feats[:, 0] + cos * feats[:, 1]], -1)
    return 2.0 * rotated


_GENERATORS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "8gaussians": _eight_gaussians,
    "moons": _moons,
    "rings": _rings,
    "checkerboard": _checkerboard,
    "pinwheel": _pinwheel,
}
DATASETS: tuple[str, ...] = tuple(_GENERATORS)


@dataclass(frozen=True)
class Dataset:
    """A named dataset split into ``train``, ``val`` and ``test`` tensors ``(n, 2)`` (float32)."""

    name: str
    train: Tensor
    val: Tensor
    test: Tensor

    @property
    def dim(self) -> int:
        """Dimension of the points."""
        return int(self.train.shape[1])


def load_dataset(name: str, seed: int = 0, sizes: tuple[int, int, int] = SIZES) -> Dataset:
    """Draw dataset ``name`` (one of :data:`DATASETS`) with ``seed``; splits of ``sizes`` (train, val, test)."""
    choice("dataset", name, DATASETS)
    n_train, n_val, n_test = (
        positive_int(k, v) for k, v in zip(("train", "val", "test"), sizes, strict=True)
    )
    rng = np.random.default_rng([seed, DATASETS.index(name)])
    pts = torch.from_numpy(_GENERATORS[name](rng, n_train + n_val + n_test)).float()
    return Dataset(name, pts[:n_train], pts[n_train : n_train + n_val], pts[n_train + n_val :])
