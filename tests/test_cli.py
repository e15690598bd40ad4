"""The command line entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maxent_mdn.cli import main
from maxent_mdn.cli.parser import _cores


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


SPECS = Path(__file__).resolve().parents[1] / "constraints"


def test_global_options_go_before_or_after_the_subcommand(tmp_path: Path) -> None:
    """``--debug`` and ``--threads`` anywhere; ``--debug`` adds the traceback and keeps exit code 2."""
    spec = tmp_path / "bad.py"
    spec.write_text("from maxent_mdn import *\nproblem = MaxEntProblem(1, [Mean(-1.0)], Positive())\n")
    for args in (["--debug", "train", str(spec)], ["train", str(spec), "--debug", "--threads", "1"]):
        proc = subprocess.run(
            [sys.executable, "-m", "maxent_mdn", *args], check=False, capture_output=True, text=True
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" in proc.stderr and "E[x_0] = -1" in proc.stderr.splitlines()[-1]


def test_threads_are_set_for_the_run_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(
        "maxent_mdn.cli.commands.figures", lambda args: seen.append(torch.get_num_threads()) or 0
    )
    before = torch.get_num_threads()
    assert main(["figures", "--threads", "1"]) == 0
    assert seen == [1] and torch.get_num_threads() == before
    with pytest.raises(SystemExit) as exit_:
        main(["figures", "--threads", "0"])
    assert exit_.value.code == 2


def test_threads_default_to_the_environment_variable_then_to_every_core(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``$MAXENT_MDN_THREADS`` is how a caller sharing the cores (pytest-xdist here) sets the CLI's default; a bad
    value is a clear exit 2, and ``--threads`` wins over it."""
    seen: list[int] = []
    monkeypatch.setattr(
        "maxent_mdn.cli.commands.figures", lambda args: seen.append(torch.get_num_threads()) or 0
    )
    monkeypatch.setenv("MAXENT_MDN_THREADS", "1")
    assert main(["figures"]) == 0
    monkeypatch.setenv("MAXENT_MDN_THREADS", "2")
    assert main(["figures", "--threads", "1"]) == 0
    monkeypatch.delenv("MAXENT_MDN_THREADS")
    assert main(["figures"]) == 0
    assert seen == [1, 1, _cores()]  # the affinity mask's cores
    before = torch.get_num_threads()
    for bad in ("0", "two"):
        monkeypatch.setenv("MAXENT_MDN_THREADS", bad)
        assert main(["figures"]) == 2
        assert f"$MAXENT_MDN_THREADS: expected a positive integer, got '{bad}'" in capsys.readouterr().err
        assert torch.get_num_threads() == before
    assert len(seen) == 3


def test_log_lines_and_a_finished_or_interrupted_run_kept_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Off a terminal a plain line reports progress (``--no-progress``: none); ``--force`` alone overwrites."""
    monkeypatch.setattr("maxent_mdn.training.progress.LOG_EVERY", 0.0)
    args = ["train", str(SPECS / "interval.py"), "--steps", "20", "--batch", "64", "--out", str(tmp_path)]
    args += ["--eval-samples", "20000"]  # the log and the files are the point, not the verdict's precision
    assert main(args) == 3
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("interval: step")]
    assert lines[0].startswith("interval: step 1/20 (5%)") and lines[-1].startswith("interval: step 20/20")
    assert "H=" in lines[-1]
    before = (tmp_path / "result.json").read_bytes()
    assert main(args) == 2
    assert "holds a finished run (result.json); pass --force" in capsys.readouterr().err
    assert (tmp_path / "result.json").read_bytes() == before
    (tmp_path / "result.json").unlink()  # as if interrupted: only the checkpoint is left
    assert main(args) == 2
    assert f"continue it with maxent-mdn train --resume {tmp_path}" in capsys.readouterr().err
    assert main([*args, "--force", "--seed", "1", "--no-progress"]) == 3
    assert "interval: step" not in capsys.readouterr().err
    assert json.loads((tmp_path / "result.json").read_text())["config"]["seed"] == 1


def test_fit_keeps_a_finished_fit_without_force(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "result.json").write_text("{}")
    assert main(["fit", "moons", "--out", str(tmp_path), "--steps", "1"]) == 2
    assert "holds a finished fit (result.json); pass --force" in capsys.readouterr().err
    assert (tmp_path / "result.json").read_text() == "{}"
