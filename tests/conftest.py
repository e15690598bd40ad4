"""Shared test setup: deterministic hypothesis, seeded torch, float64 helpers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

settings.register_profile("repro", derandomize=True, deadline=None, max_examples=25, print_blob=True)
settings.load_profile("repro")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
