"""Reproduction experiments (``maxent-mdn reproduce``): their cases, runs, and the runner."""

from .registry import EXPERIMENTS, Run, runs
from .runner import ReproductionError, execute, problem_for, reproduce

__all__ = ["EXPERIMENTS", "ReproductionError", "Run", "execute", "problem_for", "reproduce", "runs"]
