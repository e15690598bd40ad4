"""Training: the MEFN solver loop, temperature schedules, and evaluation of trained flows."""

from ..model.base.schedule import TemperatureSchedule
from .evaluate import Evaluation, constraint_table, evaluate, knn_entropy, sample_with_log_prob
from .solver import Result, SolverConfig, solve

__all__ = [
    "Evaluation",
    "Result",
    "SolverConfig",
    "TemperatureSchedule",
    "constraint_table",
    "evaluate",
    "knn_entropy",
    "sample_with_log_prob",
    "solve",
]
