"""Fuzz: random specs through ``maxent-mdn train`` either solve or fail with one clean message."""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

import maxent_mdn.training
from maxent_mdn.cli import main
from maxent_mdn.training import solve

QUICK = {"inner_steps": 10, "test_batches": 4, "test_batch_size": 200, "eval_samples": 1000, "batch": 64}


@st.composite
def specs(draw: st.DrawFn) -> str:
    """Source of a spec file: random dimension, support, polynomial moments, targets and relations."""
    support = draw(st.sampled_from(["Real()", "Positive()", "Interval(-1.0, 2.0)", "Simplex()"]))
    dim = draw(st.integers(2 if support == "Simplex()" else 1, 3))
    n = draw(st.integers(0, 3))
    lines = []
    for j in range(n):
        i = draw(st.integers(0, dim - 1))
        power = draw(st.integers(1, 4))
        target = draw(st.floats(-3.0, 5.0, allow_nan=False).map(lambda v: round(v, 2)))
        rel = draw(st.sampled_from(["==", "==", "<=", ">="]))
        lines.append(
            f"Expectation(lambda x: x[..., {i}] ** {power}, {target}, name='t{j}', relation='{rel}')"
        )
    if draw(st.booleans()) and support != "Simplex()":
        lines.append(f"Mean({[round(draw(st.floats(0.1, 0.9)), 2) for _ in range(dim)]})")
    return (
        "from maxent_mdn import *\n"
        f"problem = MaxEntProblem({dim}, [{', '.join(lines)}], {support}, name='fuzz')\n"
    )


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(source=specs())
def test_random_specs_solve_or_fail_cleanly(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maxent_mdn.training, "solve", functools.partial(solve, **QUICK))
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.py"
        spec.write_text(source)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(
                ["train", str(spec), "--steps", "20", "--out", str(Path(tmp) / "out"), "--no-progress"]
            )
    message = err.getvalue()
    assert code in (0, 2, 3), (source, message)
    assert "Traceback" not in message, (source, message)
    if code == 2:
        assert message.startswith("maxent-mdn train: error: "), (source, message)
        assert message.count("\n") == 1, (source, message)  # one line
