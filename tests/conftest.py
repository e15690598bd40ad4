"""Shared test setup: deterministic hypothesis, seeded torch, float64 helpers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import torch
from hypothesis import settings

settings.register_profile("repro", derandomize=True, deadline=None, max_examples=25, print_blob=True)
settings.load_profile("repro")

# pytest-xdist's workers share the cores: each gets its share of torch's threads, not all of them, and so does every
# `maxent-mdn` a test starts (in-process `main()` or a subprocess: the CLI's `--threads` defaults to this variable;
# without it two in-process CLI tests ran 2 threads each on 2 cores and took 310-337 s together against 25 s alone)
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    torch.set_num_threads(_share)
    os.environ["MAXENT_MDN_THREADS"] = str(_share)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _one_thread_for_slow_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Slow (and scale and long) tests train on one thread: their bars were measured so, a solve's outcome depends on
    the thread count (rounding), and CI runs them two at a time (``pytest -m slow -n 2``) on two cores."""
    if not any(request.node.get_closest_marker(m) for m in ("slow", "scale", "long")):
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
