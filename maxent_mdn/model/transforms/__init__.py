"""Flow layers :math:`g_l` with their log-determinants."""

from .autoregressive import AutoregressiveSpline, MaskedMLP
from .core import Transform
from .coupling import AffineCoupling, SplineCoupling
from .elementwise import ActNorm, ElementwiseAffine, Exp, Sigmoid, Softplus, Standardize
from .interop import FromTorch, ToTorch
from .nets import MLP
from .permutation import Permutation
from .residual import Planar, Radial
from .simplex import SimplexMap, StickBreaking
from .spline import rational_quadratic_spline
from .tails import Tails

__all__ = [
    "MLP",
    "ActNorm",
    "AffineCoupling",
    "AutoregressiveSpline",
    "ElementwiseAffine",
    "Exp",
    "FromTorch",
    "MaskedMLP",
    "Permutation",
    "Planar",
    "Radial",
    "Sigmoid",
    "SimplexMap",
    "Softplus",
    "SplineCoupling",
    "Standardize",
    "StickBreaking",
    "Tails",
    "ToTorch",
    "Transform",
    "rational_quadratic_spline",
]
