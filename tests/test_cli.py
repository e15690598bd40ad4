"""The command line entry points."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_the_commands() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "maxent_mdn", "--help"], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "demo" in proc.stdout and "train" in proc.stdout


def test_unknown_base_lists_valid_ones() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "maxent_mdn", "train", "x.py", "--base", "nope"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "gumbel-mog" in proc.stderr and "exact-mog" in proc.stderr
