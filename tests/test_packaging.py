"""The package as installed: every subpackage listed in setup.cfg, and the shipped specs inside the wheel."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import setuptools

ROOT = Path(__file__).resolve().parents[1]


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def test_setup_cfg_lists_every_package() -> None:
    """``packages`` is explicit (the specs are mapped in from constraints/), so a new subpackage must be added."""
    listed = set(_setup_cfg()["options"]["packages"].split())
    found = set(setuptools.find_packages(str(ROOT), include=["maxent_mdn", "maxent_mdn.*"]))
    assert listed == found | {"maxent_mdn.constraints"}


def test_the_wheel_carries_the_shipped_specs(tmp_path: Path) -> None:
    """Build the wheel (no dependencies, no isolation: seconds) and look inside it."""
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            tmp_path,
            ROOT,
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("maxent_mdn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"maxent_mdn/constraints/{p.name}" for p in (ROOT / "constraints").iterdir() if p.is_file()}
    assert shipped <= names, sorted(shipped - names)
    assert not any(n.startswith(("tests/", "constraints/", "benchmarks/")) for n in names)
