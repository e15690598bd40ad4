"""maxent-mdn: maximum-entropy distributions with Gumbel-softmax mixture flows.

The pipeline, in the order of the sub-packages:

* :mod:`maxent_mdn.problem`: what is asked (supports, constraints);
* :mod:`maxent_mdn.model`: base distributions, flow layers, flows;
* :mod:`maxent_mdn.objective`: the base-density estimators and their kernels.
"""

from .model import (
    BaseDistribution,
    ExactMoG,
    Flow,
    GumbelMoG,
    Selection,
    StandardNormal,
    make_base,
    make_flow,
)
from .model.transforms import (
    ActNorm,
    AffineCoupling,
    ElementwiseAffine,
    Exp,
    Permutation,
    Planar,
    Radial,
    Sigmoid,
    SimplexMap,
    Softplus,
    SplineCoupling,
    Transform,
)
from .objective import ESTIMATORS
from .problem import Interval, Positive, Real, Simplex, Support

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "ActNorm",
    "AffineCoupling",
    "BaseDistribution",
    "ElementwiseAffine",
    "ExactMoG",
    "Exp",
    "Flow",
    "GumbelMoG",
    "Interval",
    "Permutation",
    "Planar",
    "Positive",
    "Radial",
    "Real",
    "Selection",
    "Sigmoid",
    "Simplex",
    "SimplexMap",
    "Softplus",
    "SplineCoupling",
    "StandardNormal",
    "Support",
    "Transform",
    "make_base",
    "make_flow",
]
