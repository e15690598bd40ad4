"""Shared test setup: deterministic hypothesis, seeded torch, float64 helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hypothesis import settings

settings.register_profile("repro", derandomize=True, deadline=None, max_examples=25, print_blob=True)
settings.load_profile("repro")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


class _SolveCalled(Exception):
    """Raised by the stand-in for ``solve``: the CLI got as far as calling it."""


@pytest.fixture
def solve_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], dict[str, object]]:
    """``maxent-mdn ARGS`` up to the call of ``solve``; returns the keyword arguments it was given."""
    from maxent_mdn.cli import main

    def run(argv: list[str]) -> dict[str, object]:
        seen: dict[str, object] = {}

        def fake_solve(problem: object, **kwargs: object) -> None:
            seen.update(kwargs)
            raise _SolveCalled

        monkeypatch.setattr("maxent_mdn.training.solve", fake_solve)
        with pytest.raises(_SolveCalled):
            main(argv)
        return seen

    return run
