"""Every bad input of the CLI: exit code 2, one message that names the problem, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from maxent_mdn.cli import main

HEADER = "import numpy as np, torch\nfrom maxent_mdn import *\n"
QUARTIC = "Expectation(lambda x: x[..., 0] ** 2, 1.0, name='m2'), Expectation(lambda x: x[..., 0] ** 4, {m4}, name='m4')"

# (id, spec source (None: no file), extra CLI arguments, regex the message must contain)
CASES: list[tuple[str, str | None, list[str], str]] = [
    ("missing file", None, [], r"spec file not found"),
    ("syntax error", "problem = MaxEntProblem(1,\n  [Mean(0.0)]\n x", [], r"syntax error in spec .*line \d"),
    ("error while running", "problem = 1 / 0", [], r"line 3 raised ZeroDivisionError"),
    (
        "no problem",
        "p = MaxEntProblem(1, [Mean(0.0), SecondMoment(1.0)])",
        [],
        r"defines no variable named 'problem'",
    ),
    ("problem of wrong type", "problem = {'dim': 1}", [], r"'problem' is a dict, not a MaxEntProblem"),
    (
        "fn of wrong shape",
        "problem = MaxEntProblem(1, [Expectation(lambda x: x.repeat(1, 3), [1.0, 2.0], name='t')])",
        [],
        r"constraint 't': fn maps points of shape .* expected .*2-element target",
    ),
    (
        "fn of wrong dtype",
        "problem = MaxEntProblem(1, [Expectation(lambda x: (x > 0).long()[..., 0], 0.5, name='sign')])",
        [],
        r"constraint 'sign': fn must return floating-point values",
    ),
    (
        "fn not returning a tensor",
        "problem = MaxEntProblem(1, [Expectation(lambda x: 1.0, 0.5, name='c')])",
        [],
        r"constraint 'c': fn must return a torch.Tensor",
    ),
    ("non-finite target", "problem = MaxEntProblem(1, [Mean(float('nan'))])", [], r"target must be finite"),
    (
        "duplicate names",
        "problem = MaxEntProblem(1, [Mean(0.0), SecondMoment(1.0, name='mean')])",
        [],
        r"constraint names must be unique; repeated: mean",
    ),
    ("no constraints on R", "problem = MaxEntProblem(2, [])", [], r"no constraints on an unbounded support"),
    (
        "E[x^4] < E[x^2]^2",
        f"problem = MaxEntProblem(1, [{QUARTIC.format(m4=0.5)}])",
        [],
        r"no distribution on Real\(\).*'m2', 'm4'.*E\[x\^4\] >= E\[x\^2\]\^2",
    ),
    (
        "Jensen on Positive",
        "problem = MaxEntProblem(1, [Mean(1.0), LogMean(0.2)], Positive())",
        [],
        r"E\[log x_0\] = 0.2 >= log E\[x_0\].*Jensen",
    ),
    (
        "negative mean on Positive",
        "problem = MaxEntProblem(1, [Mean(-1.0)], Positive())",
        [],
        r"E\[x_0\] = -1, but the support is Positive\(\)",
    ),
    (
        "mean outside Interval",
        "problem = MaxEntProblem(1, [Mean(1.5)], Interval(0, 1))",
        [],
        r"E\[x_0\] = 1.5 lies outside the support Interval\(0, 1\)",
    ),
    (
        "unreachable simplex log-moments",
        "problem = MaxEntProblem(3, [LogMean([-0.5, -0.5, -0.5])], Simplex())",
        [],
        r"sum_i exp\(E\[log x_i\]\) = 1.82 >= 1",
    ),
    (
        "Simplex with dim < 2",
        "problem = MaxEntProblem(1, [LogMean(-1.0)], Simplex())",
        [],
        r"a Simplex support needs dim >= 2",
    ),
    (
        "non-PSD covariance",
        "problem = MaxEntProblem(2, [Mean([0, 0]), Covariance([[1, 2], [2, 1]], mean=[0, 0])])",
        [],
        r"covariance matrix target is not positive definite",
    ),
    (
        "contradictory inequalities",
        (
            "problem = MaxEntProblem(1, [Expectation(lambda x: x[..., 0], 1.0, name='lo', "
            "relation='>='), Expectation(lambda x: x[..., 0], 0.5, name='hi', relation='<=')], Interval(0, 2))"
        ),
        [],
        r"conflict involves 'lo', 'hi'",
    ),
    (
        "numpy in a statistic",
        (
            "problem = MaxEntProblem(1, [Mean(1.0), Expectation(lambda x: np.log(x[..., 0]), -0.6, name='logx')], "
            "Positive())"
        ),
        [],
        r"constraint 'logx' calls numpy on x: use torch operations on x, e.g. x.log\(\)",
    ),
    (
        "detached statistic",
        "problem = MaxEntProblem(1, [Expectation(lambda x: x[..., 0].detach(), 1.0, name='d')], Positive())",
        [],
        r"constraint 'd' does not depend differentiably on x",
    ),
    (
        "indicator statistic",
        (
            "problem = MaxEntProblem(1, [Mean(1.0), Expectation(lambda x: (x[..., 0] > 1).double(), 0.3, "
            "name='tail')], Positive())"
        ),
        [],
        r"constraint 'tail' does not depend differentiably on x .*torch.sigmoid",
    ),
    (
        "step statistic",
        "problem = MaxEntProblem(1, [Expectation(lambda x: torch.round(x[..., 0]), 1.0, name='r')], Positive())",
        [],
        r"constraint 'r' has zero gradient at every one of \d+ samples",
    ),
    (
        "statistic undefined on part of the support",
        "problem = MaxEntProblem(1, [SecondMoment(2.0), Expectation(lambda x: x[..., 0].log(), 0.0, name='logx')])",
        [],
        r"constraint 'logx' is not finite at \d+ of 256 samples inside Real\(\)",
    ),
    (
        "statistic raising inside",
        (
            "problem = MaxEntProblem(1, [Expectation(lambda x: x[..., 0] if not x.requires_grad else x @ x, 1.0, "
            "name='mm')], Positive())"
        ),
        [],
        r"constraint 'mm': fn raised RuntimeError on samples of shape \(256, 1\)",
    ),
    (
        "statistic raising a TypeError",
        "problem = MaxEntProblem(1, [Expectation(lambda x: x[..., 0] + 'a', 1.0, name='bad')], Positive())",
        [],
        r"constraint 'bad': fn raised TypeError on samples of shape \(256, 1\)",
    ),
    ("tau = 0", "ok", ["--tau", "0"], r"tau must be a positive"),
    ("components = 0", "ok", ["--components", "0"], r"components must be a positive integer"),
    ("negative steps", "ok", ["--steps", "-5"], r"steps must be a positive integer"),
    ("batch = 0", "ok", ["--batch", "0"], r"batch must be a positive integer"),
    ("lr = 0", "ok", ["--lr", "0"], r"lr must be a positive"),
    ("NaN lr", "ok", ["--lr", "nan"], r"lr must be a positive, finite number"),
    (
        "unknown base",
        "ok",
        ["--base", "maf"],
        r"invalid choice: 'maf' \(choose from '?auto'?, '?gaussian'?, '?gumbel-mog'?, '?exact-mog",
    ),
    ("unknown transform", "ok", ["--transform", "glow"], r"invalid choice: 'glow' \(choose from '?planar"),
    ("unusable device", "ok", ["--device", "tpu:7"], r"device 'tpu:7' is not usable here"),
]
OK_SPEC = "problem = MaxEntProblem(1, [Mean(1.0)], Positive())"


@pytest.mark.parametrize(("source", "extra", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture, source: str | None, extra: list[str], message: str
) -> None:
    spec = tmp_path / "spec.py"
    if source is not None:
        spec.write_text(HEADER + (OK_SPEC if source == "ok" else source) + "\n")
    args = ["train", str(spec), "--steps", "10", "--out", str(tmp_path / "out"), "--no-progress", *extra]
    if "--steps" in extra:
        args[2:4] = []
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()  # nothing half-written
