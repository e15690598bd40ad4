"""Shared test setup: deterministic hypothesis, seeded torch, float64 helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from hypothesis import settings

settings.register_profile("repro", derandomize=True, deadline=None, max_examples=25, print_blob=True)
settings.load_profile("repro")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _one_thread_for_slow_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Slow (and scale) tests train on one thread: their bars were measured so, a solve's outcome depends on
    the thread count (rounding), and CI runs them two at a time (``pytest -m slow -n 2``) on two cores."""
    if request.node.get_closest_marker("slow") is None and request.node.get_closest_marker("scale") is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
