"""``make_flow``: sensible default flows from a few names."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.distributions import constraints

from .._checks import choice, positive_float, positive_int
from ..problem.support import Support
from .base import BaseDistribution, ExactMoG, GumbelMoG, StandardNormal
from .flow import Flow
from .rad import RADFlow, make_rad
from .transforms import (
    AffineCoupling,
    AutoregressiveSpline,
    ElementwiseAffine,
    Exp,
    Permutation,
    Planar,
    Radial,
    Sigmoid,
    SimplexMap,
    SplineCoupling,
    Standardize,
    StickBreaking,
    Tails,
    Transform,
)

__all__ = [
    "BASES",
    "BASE_CHOICES",
    "DEFAULTS",
    "DEFAULT_LAYERS",
    "MIXTURE_MAX_DIM",
    "RAD_BASES",
    "SIMPLEX_MAPS",
    "SUPPORT_BIJECTORS",
    "TRANSFORMS",
    "Defaults",
    "make_base",
    "make_flow",
    "register_support_bijector",
    "resolve_base",
    "support_bijector",
]

#: the one list of model names (solver ``base``, ``fit --model``, the experiments), simplest first
BASES: tuple[str, ...] = ("gaussian", "gumbel-mog", "exact-mog", "rad", "rad-spline")
#: the RAD models among :data:`BASES` and the coupling between their folds (:func:`~maxent_mdn.model.rad.make_rad`)
RAD_BASES: dict[str, str] = {"rad": "coupling", "rad-spline": "spline"}
#: what a solver's or ``make_flow``'s ``base`` may be: a model name, or ``"auto"`` (:func:`resolve_base`)
BASE_CHOICES: tuple[str, ...] = ("auto", *BASES)
#: ``base="auto"`` is the Gumbel-MoG base up to this many flow coordinates and the Gaussian base above
MIXTURE_MAX_DIM = 4
TRANSFORMS: tuple[str, ...] = ("planar", "radial", "coupling", "spline", "autoregressive")
#: the maps onto the simplex by name, the default first
SIMPLEX_MAPS: dict[str, type[Transform]] = {"stick-breaking": StickBreaking, "additive-logistic": SimplexMap}
#: flow layers when ``layers`` is not given, per transform
DEFAULT_LAYERS: dict[str, int] = {"planar": 10, "radial": 10, "coupling": 4, "spline": 4, "autoregressive": 4}


class Defaults(NamedTuple):
    """The architecture defaults, shared by :func:`make_flow` and the solver's ``SolverConfig`` (one model per call)."""

    base: str = "auto"
    components: int = 8
    transform: str = "spline"
    tau: float = 0.5
    anneal_rate: float = 0.0
    tau_min: float = 0.05
    hidden: int = 64
    bins: int = 16
    tails: bool = True
    simplex_map: str = "stick-breaking"


DEFAULTS = Defaults()


def resolve_base(name: str, flow_dim: int) -> str:
    r"""The base ``name`` stands for on ``flow_dim`` flow coordinates: ``name`` itself, or what ``"auto"`` picks.

    ``"auto"`` (the default) is ``"gumbel-mog"`` up to :data:`MIXTURE_MAX_DIM` (4) flow coordinates
    and ``"gaussian"`` above. Measured with every other setting at its default (spline flow with the
    tail layer, stick-breaking, 5-minute limit; ``experiments/results/scale_auto.csv`` and
    ``scale_tails.csv``), the KL to
    the exact answer:

    ============================  ======  =====================  ========================
    case (seeds 0-2 where three)  flow D  Gumbel-MoG             Gaussian
    ============================  ======  =====================  ========================
    Dirichlet D = 5               4       0.0032                 0.0037
    product of bimodal quartics   4       0.0114                 0.0106
    product of bimodal quartics   8       0.0287                 0.0146 / 0.0183 / 0.0189
    Dirichlet D = 10              9       0.021 / 0.023 / 0.027  0.0034 / 0.0040 / 0.0044
    Dirichlet D = 20              19      0.120 (seed 1: 0.063)  0.052 / 0.050 / 0.034
    ============================  ======  =====================  ========================

    The mixture base's loss at D = 10 is not the nested estimate's bias: with near-hard
    selections (``tau`` 0.1 and 0.03, where the estimate over 1000 selections of 8 components
    is close to eq. 1) it measured 0.023 and 0.024. Below five coordinates the two bases are
    within each other's seed spread here, and the mixture stays the default there.

    Example:
        >>> resolve_base("auto", 2), resolve_base("auto", 9), resolve_base("exact-mog", 9)
        ('gumbel-mog', 'gaussian', 'exact-mog')
    """
    choice("base", name, BASE_CHOICES)
    if name != "auto":
        return name
    return "gumbel-mog" if positive_int("flow_dim", flow_dim) <= MIXTURE_MAX_DIM else "gaussian"


def make_base(
    name: str,
    dim: int,
    components: int = DEFAULTS.components,
    tau: float = DEFAULTS.tau,
    anneal_rate: float = DEFAULTS.anneal_rate,
    tau_min: float = DEFAULTS.tau_min,
) -> BaseDistribution:
    """Base distribution by name: ``"gumbel-mog"`` (with its temperature schedule), ``"exact-mog"`` or ``"gaussian"``."""
    choice("base", name, tuple(b for b in BASES if b not in RAD_BASES))
    if name == "gaussian":
        return StandardNormal(dim)
    if name == "exact-mog":
        return ExactMoG(dim, components)
    return GumbelMoG(dim, components, tau=tau, anneal_rate=anneal_rate, tau_min=tau_min)


#: constraint type -> factory of the flow's last layer onto that set (``None``: no layer needed)
SUPPORT_BIJECTORS: dict[type, Callable[[constraints.Constraint, int], Transform | None]] = {}


def register_support_bijector(
    kind: type,
) -> Callable[[Callable[[constraints.Constraint, int], Transform | None]], Callable]:
    """Register ``factory(constraint, dim) -> Transform | None`` for a constraint type, as ``biject_to.register`` does.

    Example:
        >>> from torch.distributions import constraints
        >>> @register_support_bijector(constraints.greater_than_eq)
        ... def _closed_half_line(constraint, dim):
        ...     return Exp(dim) if constraint.lower_bound == 0 else None
        >>> type(support_bijector(constraints.independent(constraints.nonnegative, 1), 2)).__name__
        'Exp'
        >>> del SUPPORT_BIJECTORS[constraints.greater_than_eq]
    """

    def register(factory: Callable[[constraints.Constraint, int], Transform | None]) -> Callable:
        SUPPORT_BIJECTORS[kind] = factory
        return factory

    return register


def support_bijector(support: Support | constraints.Constraint | None, dim: int) -> Transform | None:
    """The last layer that maps the unconstrained flow onto ``support`` (``None``: identity).

    Looks the support's :mod:`~torch.distributions.constraints` object up in
    :data:`SUPPORT_BIJECTORS` by type (its ``independent`` wrapper dropped: the
    layers act on whole vectors).
    """
    if support is None:
        return None
    constraint = support.constraint if isinstance(support, Support) else support
    while isinstance(constraint, constraints.independent):
        constraint = constraint.base_constraint
    for kind in type(constraint).__mro__:
        if kind in SUPPORT_BIJECTORS:
            return SUPPORT_BIJECTORS[kind](constraint, dim)
    raise TypeError(
        f"no flow layer maps onto the support {support!r} ({constraint}); use Real(), Positive(), "
        "Interval(low, high) or Simplex(), or register one with register_support_bijector"
    )


@register_support_bijector(type(constraints.real))
def _real(constraint: constraints.Constraint, dim: int) -> None:
    return None


@register_support_bijector(constraints.greater_than)
def _half_line(constraint: constraints.Constraint, dim: int) -> Transform:
    if constraint.lower_bound != 0:
        raise TypeError(f"only the positive half-line (0, inf) has a flow layer, not {constraint}")
    return Exp(dim)


@register_support_bijector(constraints.interval)
def _interval(constraint: constraints.Constraint, dim: int) -> Transform:
    return Sigmoid(dim, float(constraint.lower_bound), float(constraint.upper_bound))


@register_support_bijector(type(constraints.simplex))
def _simplex(constraint: constraints.Constraint, dim: int) -> Transform:
    return SIMPLEX_MAPS[DEFAULTS.simplex_map](dim)


def _stack(transform: str, dim: int, layers: int, hidden: int, bins: int, bound: float) -> list[Transform]:
    if transform == "planar":
        return [Planar(dim) for _ in range(layers)]
    if transform == "radial":
        return [Radial(dim) for _ in range(layers)]
    out: list[Transform] = [ElementwiseAffine(dim)]
    for i in range(layers):
        if transform == "coupling":
            out.append(AffineCoupling(dim, hidden=hidden))
        elif transform == "autoregressive":
            out.append(AutoregressiveSpline(dim, bins=bins, bound=bound, hidden=hidden))
        else:
            out.append(SplineCoupling(dim, bins=bins, bound=bound, hidden=hidden))
        if dim > 1 and i < layers - 1:
            out.append(Permutation(dim))
    return out


def make_flow(
    dim: int,
    base: str = DEFAULTS.base,
    components: int = DEFAULTS.components,
    transform: str = DEFAULTS.transform,
    layers: int | None = None,
    support: Support | None = None,
    tau: float = DEFAULTS.tau,
    anneal_rate: float = DEFAULTS.anneal_rate,
    tau_min: float = DEFAULTS.tau_min,
    hidden: int = DEFAULTS.hidden,
    bins: int = DEFAULTS.bins,
    bound: float = 10.0,
    tails: bool = DEFAULTS.tails,
    simplex_map: str = DEFAULTS.simplex_map,
    standardize: tuple[list[float], list[float]] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Flow | RADFlow:
    r"""Build a flow with a named base and layer type on a given support.

    Args:
        dim: dimension of the distribution (for :class:`Simplex`, the number
            of coordinates :math:`D`; the flow itself then lives on
            :math:`\mathbb R^{D-1}`).
        base: ``"auto"`` (the default: ``"gumbel-mog"`` up to 4 flow coordinates,
            ``"gaussian"`` above; :func:`resolve_base`), ``"gumbel-mog"`` (soft
            Gumbel-softmax selections, nested density),
            ``"exact-mog"`` (exact mixture, implicit-reparameterization gradients),
            ``"gaussian"`` (standard normal, as in MEFN), ``"rad"``: a
            :class:`~maxent_mdn.model.rad.RADFlow` (standard normal base, RAD
            folding layers with affine couplings, as in the paper; ``transform``
            is then unused), or ``"rad-spline"``: the same with spline couplings
            of ``bins`` bins between the folds.
        components: mixture components (Gumbel-MoG base).
        transform: ``"spline"`` (rational-quadratic spline coupling, 4 layers; the
            default), ``"planar"`` (MEFN's; 10), ``"radial"`` (10), ``"coupling"``
            (affine coupling, 4) or ``"autoregressive"`` (inverse-autoregressive
            rational-quadratic splines, 4: every coordinate transformed in every
            layer, one pass to sample, ``D`` passes for the density of a given point).
        layers: number of layers (default per ``transform``).
        support: ``None``/:class:`Real`, :class:`Positive`, :class:`Interval`
            or :class:`Simplex`; adds the matching final bijector.
        tau: Gumbel-softmax temperature.
        anneal_rate, tau_min: the Gumbel-MoG base's annealing schedule (``0``: constant ``tau``).
        hidden: width of coupling conditioners.
        bins: spline bins (16).
        bound: splines act on :math:`[-B, B]` (identity outside).
        tails: end the learnable layers with :class:`~maxent_mdn.model.transforms.Tails`, whose
            per-side exponents turn the Gaussian tails that Lipschitz layers keep into
            exponential or lighter ones (not used by the RAD bases).
        simplex_map: the last layer on a :class:`Simplex` support: ``"stick-breaking"``
            (:class:`~maxent_mdn.model.transforms.StickBreaking`, the default: a Dirichlet is a
            product of independent Betas in its coordinates) or ``"additive-logistic"``
            (MEFN's :class:`~maxent_mdn.model.transforms.SimplexMap`).
        standardize: ``(loc, scale)`` of a fixed :class:`Standardize` layer
            between the learnable layers and the support map, one entry per
            flow coordinate (see :func:`~maxent_mdn.problem.standardization`).
        device, dtype: where and in what precision the parameters live.

    Example:
        >>> from maxent_mdn import Simplex
        >>> flow = make_flow(3, transform="planar", support=Simplex())
        >>> bool(torch.allclose(flow.sample((4,)).sum(-1), torch.ones(4)))
        True
    """
    positive_int("dim", dim)
    choice("transform", transform, TRANSFORMS)
    choice("simplex_map", simplex_map, tuple(SIMPLEX_MAPS))
    layers_given = layers
    layers = DEFAULT_LAYERS[transform] if layers is None else positive_int("layers", layers)
    flow_dim = support.flow_dim(dim) if support is not None else dim
    base = resolve_base(base, flow_dim)
    # built for the RAD bases too, though they discard it: its draws from the seed's generator come first,
    # so a seed initializes RAD as in the journalled experiment runs
    transforms = _stack(
        transform,
        flow_dim,
        layers,
        positive_int("hidden", hidden),
        positive_int("bins", bins),
        positive_float("bound", bound),
    )
    if tails:
        transforms.append(Tails(flow_dim))
    tail = [] if standardize is None else [Standardize(*standardize)]
    last = support_bijector(support, flow_dim)
    if type(last) in SIMPLEX_MAPS.values():
        last = SIMPLEX_MAPS[simplex_map](flow_dim)
    tail += [] if last is None else [last]
    if tail and tail[0].dim_in != flow_dim:
        raise ValueError(f"standardize has {tail[0].dim_in} entries, the flow {flow_dim} coordinates")
    if base in RAD_BASES:  # a model of its own: folds and couplings over a standard normal
        coupling = RAD_BASES[base]
        rad_layers = DEFAULT_LAYERS[coupling] if layers_given is None else layers
        rad = make_rad(
            flow_dim, rad_layers, hidden=hidden, last=tail, transform=coupling, bins=bins, bound=bound
        )
        return rad.to(device=device, dtype=dtype)
    transforms.extend(tail)
    flow = Flow(
        make_base(base, flow_dim, positive_int("components", components), tau, anneal_rate, tau_min),
        transforms,
    )
    return flow.to(device=device, dtype=dtype)
