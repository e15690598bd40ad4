"""Constraint specs: the Expectation API, conveniences, and loading spec files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from maxent_mdn import (
    Covariance,
    Expectation,
    Interval,
    LogMean,
    MaxEntProblem,
    Mean,
    Positive,
    Real,
    SecondMoment,
    Simplex,
    SpecError,
    load_spec,
)

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "constraints").glob("*.py"))


def test_statistics_stack_rows_in_order() -> None:
    problem = MaxEntProblem(
        2,
        [
            Mean([1.0, 2.0]),
            Expectation(lambda x: x[..., 0] * x[..., 1], 0.5, name="cross"),
            SecondMoment([1.0, 1.0]),
        ],
    )
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    want = torch.tensor([[1.0, 2.0, 2.0, 1.0, 4.0], [3.0, -1.0, -3.0, 9.0, 1.0]])
    torch.testing.assert_close(problem.statistics(x), want)
    assert problem.rows == [
        ("mean", 0),
        ("mean", 1),
        ("cross", 0),
        ("second_moment", 0),
        ("second_moment", 1),
    ]
    assert problem.targets.tolist() == [1.0, 2.0, 0.5, 1.0, 1.0]


def test_covariance_and_matrix_second_moment_use_upper_triangle() -> None:
    cov = Covariance([[1.0, 0.3], [0.3, 2.0]], mean=[1.0, -1.0])
    x = torch.tensor([[2.0, 1.0]])
    torch.testing.assert_close(cov.evaluate(x), torch.tensor([[1.0, 2.0, 4.0]]))
    sec = SecondMoment([[1.0, 0.3], [0.3, 2.0]])
    torch.testing.assert_close(sec.evaluate(x), torch.tensor([[4.0, 2.0, 1.0]]))
    assert LogMean([-1.0, -1.0]).evaluate(torch.tensor([[1.0, 1.0]])).abs().sum() == 0


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_every_shipped_spec_loads(spec: Path) -> None:
    problem = load_spec(spec)
    assert isinstance(problem, MaxEntProblem) and problem.rows
    x = torch.rand(7, problem.dim) + 0.1
    if isinstance(problem.support, Simplex):
        x = x / x.sum(-1, keepdim=True)
    assert problem.statistics(x).shape == (7, len(problem.rows))


def test_a_shipped_spec_loads_by_name_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``load_spec("name")`` finds constraints/<name>.py from any directory; a user's own file wins."""
    monkeypatch.chdir(tmp_path)
    shipped = load_spec(ROOT / "constraints" / "quartic_bimodal_1d.py")
    for name in ("quartic_bimodal_1d", "quartic_bimodal_1d.py"):
        by_name = load_spec(name)
        assert by_name.name == shipped.name and by_name.rows == shipped.rows
    (tmp_path / "dirichlet.py").write_text(
        "from maxent_mdn import MaxEntProblem, Mean\nproblem = MaxEntProblem(1, [Mean(0.0)], name='mine')\n"
    )
    assert load_spec("dirichlet.py").name == "mine"
    with pytest.raises(SpecError, match=r"spec file not found: nosuch \(nor a shipped spec: beta, dirichlet"):
        load_spec("nosuch")
    with pytest.raises(SpecError, match=r"spec file not found: sub/dirichlet.py$"):
        load_spec("sub/dirichlet.py")  # a path with a folder is the user's, never a shipped name


def test_required_shipped_specs_present() -> None:
    names = {s.stem for s in SPECS}
    assert {
        "gaussian_2d",
        "dirichlet",
        "exponential",
        "quartic_bimodal_1d",
        "quartic_2d",
        "interval",
    } <= names
    assert any(r != "==" for s in SPECS for r in load_spec(s).relations), "one spec needs an inequality"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "defines no variable named 'problem'"),
        ("problem = 3\n", "'problem' is a int, not a MaxEntProblem"),
        ("def f(:\n", "syntax error in spec .*, line 1"),
        ("import math\nmath.sqrt(-1)\n", r"line 2 raised ValueError: math domain error"),
        (
            "from maxent_mdn import *\nproblem = MaxEntProblem(1, [Mean(1.0), Mean(2.0)])\n",
            "constraint names must be unique; repeated: mean",
        ),
        (
            "from maxent_mdn import *\nproblem = MaxEntProblem(1, [])\n",
            "no constraints on an unbounded support",
        ),
        (
            "from maxent_mdn import *\nproblem = MaxEntProblem(1, [Mean(float('nan'))])\n",
            "target must be finite",
        ),
    ],
)
def test_bad_spec_files(tmp_path: Path, source: str, message: str) -> None:
    path = tmp_path / "spec.py"
    path.write_text(source)
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_missing_spec_and_bad_problems(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.py")
    with pytest.raises(SpecError, match="Simplex support needs dim >= 2"):
        MaxEntProblem(1, [Mean(0.5)], support=Simplex())
    with pytest.raises(ValueError, match="relation must be one of ==, <=, >="):
        Expectation(lambda x: x, 1.0, relation="<")
    bad_shape = Expectation(lambda x: x, [1.0, 2.0, 3.0], name="bad")
    with pytest.raises(ValueError, match=r"constraint 'bad': fn maps points of shape \(4, 2\) to \(4, 2\)"):
        MaxEntProblem(2, [bad_shape]).statistics(torch.zeros(4, 2))
    assert MaxEntProblem(1, [], support=Interval(0, 1)).rows == []
    assert repr(Positive()) == "Positive()" and Real() == Real()
