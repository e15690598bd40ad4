"""maxent-mdn: maximum-entropy distributions with Gumbel-softmax mixture flows.

The pipeline, in the order of the sub-packages:

* :mod:`maxent_mdn.problem`: what is asked (supports, constraints);
* :mod:`maxent_mdn.model`: base distributions (with their density estimators and kernels),
  flow layers, flows, RAD, and the contract the solver trains against;
* :mod:`maxent_mdn.objective`: the augmented Lagrangian and RAD's score-function term;
* :mod:`maxent_mdn.training`: the solver loop, density-estimation fits, evaluation, outputs
  (:func:`solve`, :class:`Result`, :class:`SolverConfig` and :func:`load_model` are also here, at the top);
* :mod:`maxent_mdn.certify`: the dual certificate, the Gibbs form, exact samples;
* :mod:`maxent_mdn.datasets`: seeded 2D toy datasets for density estimation;
* :mod:`maxent_mdn.reference`: exact answers (closed forms, cvxpy on a grid);
* :mod:`maxent_mdn.viz`: figures.
"""

from .model import (
    BaseDistribution,
    ExactMoG,
    Flow,
    GumbelMoG,
    MaxEntModel,
    Selection,
    StandardNormal,
    make_base,
    make_flow,
)
from .model.base import ESTIMATORS
from .model.rad import Fold, RADFlow, make_rad
from .model.transforms import (
    ActNorm,
    AffineCoupling,
    AutoregressiveSpline,
    ElementwiseAffine,
    Exp,
    FromTorch,
    Permutation,
    Planar,
    Radial,
    Sigmoid,
    SimplexMap,
    Softplus,
    SplineCoupling,
    Standardize,
    StickBreaking,
    Tails,
    ToTorch,
    Transform,
)
from .problem import (
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
    Support,
    load_spec,
)
from .training import Result, SolverConfig, solve
from .training.outputs import load_model

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "ActNorm",
    "AffineCoupling",
    "AutoregressiveSpline",
    "BaseDistribution",
    "Covariance",
    "ElementwiseAffine",
    "ExactMoG",
    "Exp",
    "Expectation",
    "Flow",
    "Fold",
    "FromTorch",
    "GumbelMoG",
    "Interval",
    "LogMean",
    "MaxEntModel",
    "MaxEntProblem",
    "Mean",
    "Permutation",
    "Planar",
    "Positive",
    "RADFlow",
    "Radial",
    "Real",
    "Result",
    "SecondMoment",
    "Selection",
    "Sigmoid",
    "Simplex",
    "SimplexMap",
    "Softplus",
    "SolverConfig",
    "SpecError",
    "SplineCoupling",
    "StandardNormal",
    "Standardize",
    "StickBreaking",
    "Support",
    "Tails",
    "ToTorch",
    "Transform",
    "load_model",
    "load_spec",
    "make_base",
    "make_flow",
    "make_rad",
    "solve",
]
