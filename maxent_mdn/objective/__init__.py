"""The training objective: MEFN's augmented Lagrangian, and the score-function term for RAD's discrete pieces.

The base-density estimators the Lagrangian's entropy term uses live with the
bases (:mod:`maxent_mdn.model.base.estimators`).
"""

from .lagrangian import AugmentedLagrangian
from .score import score_function_term

__all__ = ["AugmentedLagrangian", "score_function_term"]
