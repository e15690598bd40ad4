"""``SolverConfig``: every setting of the maximum-entropy solver, validated."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import torch

from .._checks import choice, count, non_negative_float, positive_float, positive_int
from ..model import BASE_CHOICES, DEFAULTS, SIMPLEX_MAPS, TRANSFORMS, Flow, make_flow, resolve_base
from ..model.base import ESTIMATORS
from ..model.base.schedule import TemperatureSchedule
from ..model.rad import RADFlow
from ..problem.scale import standardization
from ..problem.spec import MaxEntProblem
from ..problem.support import Support

__all__ = ["DTYPES", "SAVED_BEFORE", "SolverConfig", "saved_settings"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}

#: settings added after checkpoints and model files were first written, with the value
#: that reproduces what a file without them ran (a model without a tail layer, a cold start)
SAVED_BEFORE: dict[str, object] = {
    "warm_start": False,
    "tails": False,
    "simplex_map": "additive-logistic",
    "gibbs_stage": False,
    "gibbs_time": 1.0,
}


def saved_settings(saved: dict[str, object]) -> dict[str, object]:
    """The settings a checkpoint or model file recorded, completed with :data:`SAVED_BEFORE` where it predates them.

    Example:
        >>> saved_settings({"steps": 10})["tails"]
        False
    """
    return {**SAVED_BEFORE, **saved}


@dataclass
class SolverConfig:
    r"""Every setting of :func:`solve`, with the defaults used by ``maxent-mdn train``.

    ``gamma = 0.25`` is MEFN's; ``c0 = 1`` and the Adam reset at each outer
    iteration follow EPI. MEFN runs few, long inner loops (3000 steps) with
    ``beta = 4``; here the multipliers are updated every 250 steps with the
    whitened, Newton-like step of
    :class:`~maxent_mdn.objective.lagrangian.AugmentedLagrangian` (capped at
    ``dual_step``), and ``c`` grows by ``beta = 2`` up to ``c_max``. The
    learning rate decays by ``lr_decay`` per outer iteration (floor
    ``lr_min``), and the parameters are averaged over the last ``average``
    fraction of every inner run (Polyak–Ruppert tail averaging) before they
    are measured: Adam's steps have a fixed size whatever the gradient noise,
    so the raw iterates jitter by more than a 1% tolerance. Averaging is what
    made the convergence test pass on ``gaussian_2d`` (it never passed twice
    in 6000 steps without it) and ``bins = 16`` is what took ``quartic_2d``
    from KL 0.028 to 0.009 (seed 0, measured over the shipped specs).
    ``average = 0.8`` (it was 0.5): the averaged flow's rows still moved by about
    half their tolerance from one outer iteration to the next (``gaussian_2d`` at
    KL 4e-5: 0.3-1.3 x the tolerance, against the test's standard error of 0.22 x),
    so the test, whose window for a pass is the tolerance less 2.6 standard
    errors, passed 7 of 19 times and twice in a row first at step 4,750. Averaging
    the last 200 steps instead of 125 (one thread, seeds 0-2): ``gaussian_2d``,
    ``quartic_2d`` and ``gaussian_3d`` converged in 9 of 9 runs at 3,000-4,750
    steps (6 of 9 with 0.5; two ``gaussian_2d`` seeds ran to the 6,000-step budget,
    one with a row at 1.38 x its tolerance).

    ``base = "auto"`` is the Gumbel-MoG base on up to four flow coordinates and the
    Gaussian base above (:func:`~maxent_mdn.model.resolve_base`: on Dirichlet D = 10 the
    mixture base measured KL 0.021-0.027 over three seeds, the Gaussian 0.0034-0.0044);
    :func:`solve` records the base it picked.

    ``min_outer = 12`` keeps the convergence test from stopping before the
    entropy has had 3000 steps to rise. The test (every row statistically
    indistinguishable from its target, or confidently within
    ``rtol·max(|b|, s)``, with ``s`` the statistic's spread under the flow,
    :mod:`~maxent_mdn.objective.tolerance`; ``atol``, 0 by default, is an optional
    absolute floor) runs after every outer iteration on
    ``test_batches`` x ``test_batch_size`` fresh samples; ``patience = 2``
    consecutive passes are required to stop. ``rtol = 0.01`` is the 1% a user
    is promised, asked of the upper end of a Bonferroni confidence interval,
    not of the point estimate. (It was 0.005 with an absolute floor of 0.005,
    "half the 1%" because the entropy moves with the constraints: on the
    Dirichlet case a 1% error in :math:`E[\log x_3]` moves :math:`H` by 0.016.
    The certificate now tests that directly: ``converged`` needs the duality
    gap within ``gap_tol``. Relative to the target, 0.005 left MEFN's Dirichlet
    unconverged at 6000 steps with every row within 0.2%.)
    ``eval_samples = 200_000`` puts the final entropy's standard error near
    0.002 nats. ``standardize`` puts a fixed affine layer, read off the
    targets (:func:`~maxent_mdn.problem.standardization`), between the
    learnable layers and the support map. ``tails`` ends the learnable layers
    with :class:`~maxent_mdn.model.transforms.Tails`, whose per-side exponents
    give the flow exponential (or lighter) tails: spline and affine layers are
    Lipschitz and keep the base's Gaussian tails, while an answer with log
    statistics decays exponentially in the flow's coordinates (fitting the
    Dirichlet D = 10 answer directly by reverse KL, 3,000 steps: KL 0.018
    without the layer, 0.0027 with it). ``warm_start``: where a grid finds
    the answer (one or two free coordinates, or separable groups of at most
    two), the multipliers start at the grid dual's
    (:func:`~maxent_mdn.training.warm_start.grid_multipliers`, 0.2-1.2 s)
    instead of 0; the flow still learns the density. A warm-started solve
    caps the multiplier step at ``warm_dual_step = 0.25``: its multipliers
    are already the answer's, and a full Newton step on the violations of a
    flow that has not yet fit them moves them off (8 power moments of the
    lognormal, seed 1: λ₁ from −77 to −55 in six outer iterations, and the
    constraints never met; at 0.25 it converged at KL 0.0031). ``time_limit`` (seconds, ``None``:
    the step budget alone) ends training after the last outer iteration that leaves room, at the pace
    so far, for one more and for the verdict (:func:`~maxent_mdn.training.solver.out_of_time`), so that
    the solve with its verdict ends inside it; the result is unconverged unless the test already passed,
    and the checkpoint lets ``--resume`` continue it. ``steps=None`` drops the step budget, so that the
    clock alone ends a run that has not converged (it needs a ``time_limit``). ``maxent-mdn train``
    runs that way, with 300 s, when neither ``--steps`` nor ``--time-limit`` is given, and without
    a step budget when ``--time-limit`` is given alone: easy problems stop when certified, hard ones
    train on while there is time (the 8-D quartic product spent its 6,000 steps in 203-236 of its
    300 s and ended unconverged, seed 2 with a row at 1.12 x its tolerance; with the clock as the budget
    seeds 0-2 converged at 6,500, 7,250 and 9,000 steps, in 181-280 s, rows within 0.91 x). The library
    keeps ``steps = 6000`` and no limit, so a script's result does not depend on the machine's speed.

    After training, ``converged`` also needs the dual certificate
    (:mod:`~maxent_mdn.certify`) to show a gap D(η̂) − H(q) of at most
    ``gap_tol`` nats (an upper bound on KL(q‖p*) when the constraints hold), and the
    conservative end of the certified bound on KL(q‖p*)
    (:attr:`~maxent_mdn.certify.Certificate.kl_upper`: the larger of the gap and
    KL(q‖p_η̂), with log Z's upper estimate) at most ``kl_upper_tol``. The gap's
    point estimate is biased low where the flow misses mass of p_η (Dirichlet
    D = 10: 0.002 for a KL of 0.049) and misses the first-order cost of small
    violations where η is large (eight power moments: −0.007 for a KL of 0.012).
    ``kl_upper_tol = 0.02`` is the bar "never converged with KL above 0.02". After every outer
    iteration the multipliers are polished and the dual bound measured on
    ``2 x trace_samples`` draws (off the training's random streams; 0 skips it),
    for the history and ``certificate.png``.

    A solve stops early only when the answer would be called converged: once the
    constraint test has passed (``patience``, ``min_outer``), the certificate is
    measured on ``stop_samples`` fresh draws (``None``: ``eval_samples``, the
    verdict's own number), and training goes on while its gap or ``kl_upper`` is
    above tolerance (0 skips the check: the constraint test alone stops the
    solve, as before). The constraint test alone stopped Dirichlet D = 10 at
    3000 of 6000 steps with KL 0.049. A check on fewer draws than the verdict
    is stricter than the verdict (its standard errors are larger): at 50,000
    draws, runs the verdict would have called converged trained on past their
    passing states.

    ``gibbs_stage`` (``None``, the default: on for the built-in flows, off for a ``model`` passed to
    :func:`~maxent_mdn.solve`, see below): a solve that has not stopped after ``min_outer`` outer
    iterations drops the penalty for good (c = 0) and trains on the plain
    Lagrangian, a reverse-KL fit to the Gibbs form :math:`p_\eta`, with full
    Newton steps of the multipliers (:mod:`~maxent_mdn.training.loop`). By
    then the growing c made the penalty's gradient mostly half-batch noise
    (one thread, 5 minutes, seeds 0-2): Dirichlet D = 20 KL 0.034-0.052 with
    the penalty to the end, 0.011 with the second stage; the 8-D quartic
    product 0.015-0.019 and 0.0017-0.0028 (README, "Then the penalty stopped
    at the twelfth outer iteration"). ``False`` keeps the penalty to the end, the default before
    (files written before the setting existed resume with it: :data:`SAVED_BEFORE`). The stage's
    multiplier step has a fixed point only where the flow follows :math:`p_\eta` within an inner run;
    zuko's NSF (4 autoregressive layers) on the Gumbel-MoG base lags it on ``gaussian_2d``, where its
    constraints then wander by a few standard errors: converged in 1 of 3 seeds with the stage against
    2 of 3 without (KL at most 0.0085 either way). So a model brought from elsewhere keeps the penalty
    to the end unless ``gibbs_stage=True`` is asked for; :meth:`resolved_for` records which ran.

    ``gibbs_time = 0.5``: under a ``time_limit``, the second stage also starts after the first outer
    iteration that ends past this fraction of it, if ``min_outer`` has not come first, not before
    ``min_outer // 3`` outer iterations, and only with time left for three more at the pace so far
    (:func:`~maxent_mdn.training.solver.clock_starts_stage`; 1: by ``min_outer`` alone, as files written before
    the setting did).
    ``min_outer`` counts steps, the limit seconds: on a machine where an outer iteration takes twice as long,
    Dirichlet D = 20 ran out of its 5 minutes at 2,250 steps, before the twelfth outer iteration, and ended
    at the first stage's KL (0.061; 0.0079 with the stage on the clock). The floor: autoregressive layers
    at D = 20 reached about two outer iterations by half the limit there, and from that early stage ended at
    KL 0.52; the room: Dirichlet D = 20 seed 2 got the stage with about two outer iterations left and ended
    6.4% off a target (README, "Then the second stage started on the clock").
    """

    base: str = DEFAULTS.base
    components: int = DEFAULTS.components
    transform: str = DEFAULTS.transform
    layers: int | None = None
    hidden: int = DEFAULTS.hidden
    bins: int = DEFAULTS.bins
    tails: bool = DEFAULTS.tails
    simplex_map: str = DEFAULTS.simplex_map
    steps: int | None = 6000
    time_limit: float | None = None
    inner_steps: int = 250
    batch: int = 1000
    lr: float = 2e-3
    lr_decay: float = 0.85
    lr_min: float = 5e-5
    tau: float = DEFAULTS.tau
    anneal_rate: float = DEFAULTS.anneal_rate
    tau_min: float = DEFAULTS.tau_min
    estimator: str = "nested"
    standardize: bool = True
    warm_start: bool = True
    c0: float = 1.0
    beta: float = 2.0
    gamma: float = 0.25
    c_max: float = 100.0
    dual_step: float = 1.0
    warm_dual_step: float = 0.25
    test_batches: int = 100
    test_batch_size: int = 2000
    min_outer: int = 12
    patience: int = 2
    average: float = 0.8
    rtol: float = 0.01
    atol: float = 0.0
    eval_samples: int = 200_000
    gap_tol: float = 0.01
    kl_upper_tol: float = 0.02
    trace_samples: int = 4096
    stop_samples: int | None = None
    gibbs_stage: bool | None = None
    gibbs_time: float = 0.5
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    log_every: int = 50
    max_rollbacks: int = 4

    @property
    def step_budget(self) -> int:
        """The steps a solve may take: ``steps``, or no bound (``sys.maxsize``) when ``steps`` is ``None`` and the
        ``time_limit`` alone ends an unconverged run.

        Example:
            >>> SolverConfig().step_budget, SolverConfig(steps=None, time_limit=60.0).step_budget == sys.maxsize
            (6000, True)
        """
        return sys.maxsize if self.steps is None else self.steps

    @property
    def stop_draws(self) -> int:
        """Draws of the stop check: ``stop_samples``, or ``eval_samples`` when it is ``None`` (0: no check)."""
        return self.eval_samples if self.stop_samples is None else self.stop_samples

    def validate(self) -> SolverConfig:
        """Check every field; raise ``ValueError`` naming the first bad one."""
        choice("base", self.base, BASE_CHOICES)
        choice("transform", self.transform, TRANSFORMS)
        choice("simplex_map", self.simplex_map, tuple(SIMPLEX_MAPS))
        choice("estimator", self.estimator, ESTIMATORS)
        choice("dtype", self.dtype, tuple(DTYPES))
        for name in (
            *("components", "hidden", "bins", "inner_steps", "batch", "test_batches"),
            *("test_batch_size", "min_outer", "patience", "eval_samples", "log_every", "max_rollbacks"),
        ):
            positive_int(name, getattr(self, name))
        count("trace_samples", self.trace_samples, zero="no trace")
        if self.stop_samples is not None:  # None: eval_samples
            count("stop_samples", self.stop_samples, zero="the constraint test alone")
        self._check_budget()
        if not 0.0 < self.gibbs_time <= 1.0:
            raise ValueError(
                f"gibbs_time must be in (0, 1] (a fraction of time_limit; 1: by min_outer alone), got {self.gibbs_time!r}"
            )
        if not 0.0 <= self.average < 1.0:
            raise ValueError(
                f"average must be in [0, 1) (a fraction of each inner run), got {self.average!r}"
            )
        for name in (
            "lr",
            "lr_decay",
            "lr_min",
            "tau",
            "tau_min",
            "c0",
            "beta",
            "gamma",
            "c_max",
            "dual_step",
            "warm_dual_step",
            "rtol",
            "gap_tol",
            "kl_upper_tol",
        ):
            positive_float(name, getattr(self, name))
        non_negative_float("atol", self.atol)
        if self.batch < 2:
            raise ValueError("batch must be at least 2 (the penalty uses two halves)")
        self._check_types()
        TemperatureSchedule(self.tau, self.anneal_rate, self.tau_min)
        try:
            torch.empty(0, device=self.device)
        except (RuntimeError, ValueError) as err:
            raise ValueError(f"device {self.device!r} is not usable here: {err}") from None
        return self

    def _check_budget(self) -> None:
        """``layers``, ``steps`` and ``time_limit`` may be ``None``; the steps and the clock not both."""
        for name, check in (
            ("layers", positive_int),
            ("steps", positive_int),
            ("time_limit", positive_float),
        ):  # None: the default (steps: no step budget)
            if getattr(self, name) is not None:
                check(name, getattr(self, name))
        if self.steps is None and self.time_limit is None:
            raise ValueError(
                "steps=None (no step budget) needs a time_limit; give one of them "
                "(maxent-mdn train: --steps N or --time-limit SECONDS)"
            )

    def _check_types(self) -> None:
        if not isinstance(self.seed, int):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")
        for name in ("tails", "warm_start", "standardize"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.gibbs_stage is not None and not isinstance(self.gibbs_stage, bool):
            raise TypeError(f"gibbs_stage must be True, False or None, got {self.gibbs_stage!r}")

    def resolved_for(self, problem: MaxEntProblem, custom_model: bool = False) -> SolverConfig:
        """These settings as they run on ``problem``, what a run records: ``base="auto"`` replaced by the base
        it picks, ``gibbs_stage=None`` by on for a built-in flow and off for a ``custom_model``.

        Example:
            >>> from maxent_mdn import Covariance, MaxEntProblem
            >>> def gaussian(d):
            ...     return MaxEntProblem(d, [Covariance(torch.eye(d).tolist(), mean=[0.0] * d)])
            >>> SolverConfig().resolved_for(gaussian(2)).base, SolverConfig().resolved_for(gaussian(6)).base
            ('gumbel-mog', 'gaussian')
            >>> SolverConfig().resolved_for(gaussian(2)).gibbs_stage, SolverConfig().resolved_for(gaussian(2), True).gibbs_stage
            (True, False)
        """
        base = resolve_base(self.base, problem.support.flow_dim(problem.dim))
        gibbs = not custom_model if self.gibbs_stage is None else self.gibbs_stage
        return dataclasses.replace(self, base=base, gibbs_stage=gibbs)

    def build_flow(
        self, dim: int, support: Support | None, standardize: tuple[list[float], list[float]] | None
    ) -> Flow | RADFlow:
        """The untrained model these settings describe: the one mapping from settings to architecture.

        :func:`~maxent_mdn.solve` builds with it and
        :func:`~maxent_mdn.training.outputs.load_model` rebuilds with it, so a
        saved model always reloads into the architecture it was trained in.

        Example:
            >>> SolverConfig(transform="coupling", layers=2).build_flow(2, None, None).dim
            2
        """
        return make_flow(
            dim,
            base=self.base,
            components=self.components,
            transform=self.transform,
            layers=self.layers,
            support=support,
            tau=self.tau,
            anneal_rate=self.anneal_rate,
            tau_min=self.tau_min,
            hidden=self.hidden,
            bins=self.bins,
            tails=self.tails,
            simplex_map=self.simplex_map,
            standardize=standardize,
            device=self.device,
            dtype=DTYPES[self.dtype],
        )

    def build_flow_for(self, problem: MaxEntProblem) -> Flow | RADFlow:
        """:meth:`build_flow` for ``problem``: its dimension, its support, and (if ``standardize``) its targets' scale.

        Example:
            >>> from maxent_mdn import Covariance, MaxEntProblem
            >>> problem = MaxEntProblem(2, [Covariance([[1.0, 0.5], [0.5, 1.0]], mean=[0.0, 0.0])])
            >>> SolverConfig(transform="coupling", layers=2).build_flow_for(problem).dim
            2
        """
        scale = standardization(problem) if self.standardize else None
        return self.build_flow(problem.dim, problem.support, scale)
