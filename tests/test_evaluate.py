"""Evaluation helpers against closed forms."""

from __future__ import annotations

import numpy as np

from maxent_mdn.training.evaluate import knn_entropy


def test_knn_entropy_is_not_fooled_by_float32_ties() -> None:
    """200,000 standard normals rounded to float32 repeat ~300 times; the estimate must stay near the truth."""
    x = np.random.default_rng(1).standard_normal((200_000, 1)).astype(np.float32).astype(np.float64)
    assert len(np.unique(x)) < len(x)  # the ties are there
    assert abs(knn_entropy(x) - 0.5 * np.log(2 * np.pi * np.e)) < 0.005


def test_knn_entropy_of_a_2d_gaussian() -> None:
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    x = np.random.default_rng(2).multivariate_normal([0.5, -1.0], cov, 50_000)
    truth = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * cov))
    assert abs(knn_entropy(x) - truth) < 0.02
