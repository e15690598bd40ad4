"""The reproduction experiments: which runs each one makes, in ``quick`` and ``full`` mode.

Every run is a :class:`Run`; :mod:`~maxent_mdn.experiments.runner` executes it.
``quick`` is a smoke test (one seed, short budgets, fewer cases: minutes on two
cores); ``full`` uses the solver's defaults and the seeds asked for, and is
what the committed results come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..datasets import DATASETS
from ..model import BASES
from ..model.base import ESTIMATORS
from .mixture_cases import SEPARATIONS
from .scale_cases import SCALE_CASES

__all__ = [
    "COMPARED",
    "DIVERGENCE_IS_DATA",
    "EXPERIMENTS",
    "MIXTURE_COMPONENTS",
    "MIXTURE_FLOWS",
    "MIXTURE_RAD",
    "MIXTURE_SWEEPS",
    "Run",
    "runs",
]

EXPERIMENTS: tuple[str, ...] = (
    "dirichlet",
    "multimodal",
    "option",
    "estimators",
    "temperature",
    "density",
    "scale",
    "mixture",
)

#: the models the solve and fit experiments compare: every base and the paper's RAD (affine couplings);
#: ``rad-spline`` is measured in the ``mixture`` sweep, beside the spline flows
COMPARED: tuple[str, ...] = tuple(b for b in BASES if b != "rad-spline")

#: ``mixture``'s three sweeps (issue 20), one table each
MIXTURE_SWEEPS: tuple[str, ...] = ("mixture_separation", "mixture_flows", "mixture_modes")
#: tables whose solves may diverge by design (weak flows, wide gaps): a divergence is a row (KL = inf), not an error
DIVERGENCE_IS_DATA: frozenset[str] = frozenset(MIXTURE_SWEEPS)

#: ``mixture``'s flow-strength sweep (issue 20): MEFN's planar flow, affine couplings, splines with 4-16 bins
MIXTURE_FLOWS: dict[str, dict[str, object]] = {
    "planar-10": {"transform": "planar", "layers": 10},
    "planar-40": {"transform": "planar", "layers": 40},
    "coupling": {"transform": "coupling"},
    "spline-4": {"transform": "spline", "bins": 4},
    "spline-8": {"transform": "spline", "bins": 8},
    "spline-16": {"transform": "spline", "bins": 16},
}
#: ``mixture``'s RAD rows: each flow of the sweep with RAD's folds between its couplings (item 5: a discrete
#: latent against stronger layers, each RAD beside the flow with the same continuous layers)
MIXTURE_RAD: dict[str, str] = {
    "coupling": "rad",
    "spline-4": "rad-spline",
    "spline-8": "rad-spline",
    "spline-16": "rad-spline",
}
#: ``mixture``'s many-modes sweep: mixture components K of the Gumbel-MoG base against 2^D modes
MIXTURE_COMPONENTS: tuple[int, ...] = (2, 8, 64)

#: ``scale``: the time each full run may take (issue 19: "default settings, <= 5 minutes each")
SCALE_TIME_LIMIT = 300.0

# short budgets for --quick, a smoke test of the pipeline (five outer iterations, the second stage from the
# third); the full runs use SolverConfig's defaults. 500 steps of 100 made CI's quick run 899 s of its 77 minutes.
_QUICK = {"steps": 250, "inner_steps": 50, "min_outer": 2, "test_batches": 20, "eval_samples": 20_000}


@dataclass(frozen=True)
class Run:
    """One unit of work: an experiment's case, solved (or fitted) with one setting and one seed."""

    experiment: str
    case: str
    kind: str  # "solve", "fit" or "estimator-curves"
    seed: int
    settings: dict[str, object] = field(default_factory=dict)


def _solves(name: str, cases: list[str], variants: list[dict], seeds: int, quick: bool) -> list[Run]:
    budget = dict(_QUICK) if quick else {}
    return [
        Run(name, case, "solve", seed, {**budget, **variant})
        for seed in range(seeds)
        for case in cases
        for variant in variants
    ]


def runs(name: str, quick: bool, seeds: int) -> list[Run]:
    """The runs of experiment ``name``."""
    per_base = [{"base": b} for b in COMPARED]
    if name == "dirichlet":
        cases = (
            ["dirichlet-3d", "dirichlet-5d"]
            if quick
            else ["dirichlet-3d", "dirichlet-5d", "dirichlet-10d", "dirichlet-20d"]
        )
        return _solves(name, cases, per_base, seeds, quick)
    if name == "multimodal":
        return _solves(name, ["quartic_bimodal_1d", "trimodal-1d", "quartic_2d"], per_base, seeds, quick)
    if name == "option":
        return _solves(name, ["option-pricing"], per_base, seeds, quick)
    if name == "estimators":
        trained = _solves(name, ["quartic_bimodal_1d"], [{"estimator": e} for e in ESTIMATORS], seeds, quick)
        curves = [
            Run(name, "quartic_bimodal_1d", "estimator-curves", s, dict(_QUICK) if quick else {})
            for s in range(seeds)
        ]
        return curves + trained
    if name == "temperature":
        taus = [{"tau": t} for t in (0.05, 0.1, 0.3, 1.0)] + [
            {"tau": 1.0, "anneal_rate": 1e-3, "tau_min": 0.05}
        ]
        return _solves(name, ["quartic_bimodal_1d"], taus, seeds, quick)
    if name == "scale":  # the default base and settings, within the time a user would give a solve
        if quick:
            return _solves(name, ["power-skewed-6", "quartic-product-4d"], [{}], seeds, quick)
        # as `maxent-mdn train` runs by default: the clock, not a step budget, ends an unconverged run
        return _solves(
            name, list(SCALE_CASES), [{"time_limit": SCALE_TIME_LIMIT, "steps": None}], seeds, quick
        )
    if name == "mixture":
        return _mixture(quick, seeds)
    if name == "density":
        steps = {"steps": 150} if quick else {}
        return [
            Run(name, d, "fit", s, {"model": m, **steps})
            for s in range(seeds)
            for d in DATASETS
            for m in COMPARED
        ]
    raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")


def _mixture(quick: bool, seeds: int) -> list[Run]:
    """Issue 20's three sweeps, one table each (``mixture_separation``, ``mixture_flows``, ``mixture_modes``).

    Separation: modes 4, 8, 16 widths apart in one and two coordinates (2 and 4 modes), per base. Flow
    strength: each of :data:`MIXTURE_FLOWS` per base on four modes 8 widths apart and on the trimodal case,
    and the RAD of :data:`MIXTURE_RAD` beside the coupling and spline flows.
    Many modes: 16 and 256 modes 8 widths apart, the Gumbel-MoG base with K of :data:`MIXTURE_COMPONENTS`
    against the Gaussian base. Every run has the solver's default budget (``quick``: the smoke budget).
    """
    bases = [{"base": b} for b in ("gaussian", "gumbel-mog", "exact-mog")]
    separation, flow_strength, many_modes = MIXTURE_SWEEPS
    if quick:
        return [
            *_solves(separation, ["modes-1d-sep4", "modes-1d-sep16"], bases[:2], seeds, quick),
            *_solves(
                flow_strength,
                ["modes-2d-sep8"],
                [
                    {**MIXTURE_FLOWS["planar-10"], **bases[1]},
                    {**MIXTURE_FLOWS["spline-8"], "base": "rad-spline"},
                ],
                seeds,
                quick,
            ),
            *_solves(many_modes, ["modes-4d-sep8"], [{"base": "gumbel-mog", "components": 8}], seeds, quick),
        ]
    separated = [f"modes-{d}d-sep{s}" for d in (1, 2) for s in SEPARATIONS]
    flows = [{**f, **b} for f in MIXTURE_FLOWS.values() for b in bases] + [
        {**MIXTURE_FLOWS[f], "base": rad} for f, rad in MIXTURE_RAD.items()
    ]
    components = [{"base": "gaussian"}] + [
        {"base": "gumbel-mog", "components": k} for k in MIXTURE_COMPONENTS
    ]
    return [
        *_solves(separation, separated, bases, seeds, quick),
        *_solves(flow_strength, ["modes-2d-sep8", "trimodal-1d"], flows, seeds, quick),
        *_solves(many_modes, ["modes-4d-sep8", "modes-8d-sep8"], components, seeds, quick),
    ]
