"""The command line: the demo runs, bad input gets one clean line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from maxent_mdn.cli import main


def test_demo_prints_every_estimator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--batch", "512"]) == 0
    out = capsys.readouterr().out
    for name in ("nested", "loo", "independent", "exact", "concrete-joint"):
        assert name in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--tau", "0"], "tau must be a positive"),
        (["demo", "--batch", "0"], "n must be a positive integer"),
    ],
)
def test_bad_arguments_give_clean_errors(argv: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "maxent_mdn", *argv], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
