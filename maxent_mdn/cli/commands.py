"""The ``maxent-mdn`` subcommands: each takes the parsed arguments and returns the exit code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .sample import sample

if TYPE_CHECKING:
    from ..problem.spec import MaxEntProblem
    from ..training.result import Result

__all__ = ["NOT_CONVERGED", "demo", "figures", "fit", "reproduce", "sample", "train"]

#: exit code when training ends without passing the convergence test
NOT_CONVERGED = 3

#: ``train``'s wall-clock budget, seconds, when neither ``--steps`` nor ``--time-limit`` is given
DEFAULT_TIME_LIMIT = 300.0


def _settings(args: argparse.Namespace) -> dict[str, object]:
    keys = ("base", "components", "transform", "layers", "steps", "tau", "seed", "estimator", "batch", "lr")
    keys += ("anneal_rate", "gap_tol", "kl_upper_tol", "eval_samples", "stop_samples", "device", "dtype")
    keys += ("time_limit", "warm_start", "tails", "simplex_map", "gibbs_stage")
    settings = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if settings.get("time_limit") == 0:  # --time-limit 0: the step budget alone
        del settings["time_limit"]
    from ..model import RAD_BASES

    if settings.get("base") in RAD_BASES and "transform" in settings:
        raise ValueError(
            f"--base {settings['base']} takes its couplings from its name (rad: affine, rad-spline: splines "
            "between the folds); drop --transform"
        )
    if settings.get("base") == "concrete-joint":
        if settings.get("estimator", "concrete-joint") != "concrete-joint":
            raise ValueError("--base concrete-joint fixes the estimator; drop --estimator")
        settings.update(base="gumbel-mog", estimator="concrete-joint")
    return settings


def _flag(setting: str) -> str:
    """The option that sets ``setting``: ``time_limit`` -> ``--time-limit``, ``warm_start`` -> ``--no-warm-start``."""
    special = {
        "warm_start": "--no-warm-start",
        "gibbs_stage": "--gibbs-stage/--no-gibbs-stage",
        "tails": "--tails/--no-tails",
    }
    return special.get(setting, f"--{setting.replace('_', '-')}")


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _resume_settings(args: argparse.Namespace, state: dict[str, object]) -> dict[str, object]:
    """The checkpoint's settings; only ``--steps`` and ``--time-limit`` may change them."""
    given = {
        k for k, v in _settings(args).items() if k not in ("steps", "seed", "time_limit") and v is not None
    }
    if given or args.seed != 0:
        names = ", ".join(_flag(k) for k in sorted(given | ({"seed"} if args.seed else set())))
        raise ValueError(
            f"--resume continues a run with its own settings; drop {names} (only --steps may change; --time-limit may be given anew)"
        )
    from ..training.config import saved_settings

    settings = saved_settings(state["config"])
    if args.steps is not None:
        settings["steps"] = args.steps
    if args.time_limit is not None:
        settings["time_limit"] = args.time_limit or None  # 0: no limit
    return settings


def _default_time_limit(args: argparse.Namespace, settings: dict[str, object]) -> dict[str, object]:
    """A new run given neither ``--steps`` nor ``--time-limit`` trains for at most :data:`DEFAULT_TIME_LIMIT` s,
    with no step budget: it stops when the solution is certified, or on the clock. ``--time-limit SECONDS``
    alone also drops the step budget; ``--time-limit 0`` keeps the solver's.

    An explicit ``--steps N`` is a request for N steps and is never cut; a run
    the limit ends is reported unconverged, with the steps it reached, and
    ``--resume`` continues it (with the clock started anew).
    """
    if args.resume or args.steps is not None:
        return settings
    if args.time_limit is None:
        return {**settings, "time_limit": DEFAULT_TIME_LIMIT, "steps": None}
    if args.time_limit:  # --time-limit SECONDS alone: the clock is the budget
        return {**settings, "steps": None}
    return settings  # --time-limit 0: the step budget alone


def _refuse_overwrite(out: Path, force: bool, kind: str) -> None:
    """A folder that holds a finished or an interrupted run is kept unless ``--force`` says otherwise."""
    if force:
        return
    if (out / "result.json").is_file():
        raise FileExistsError(
            f"{out} holds a finished {kind} (result.json); pass --force to overwrite it, or --out DIR to write elsewhere"
        )
    if kind == "run" and (out / "checkpoint.pt").is_file():
        raise FileExistsError(
            f"{out} holds an interrupted run (checkpoint.pt); continue it with maxent-mdn train --resume {out}, "
            "or pass --force to start over"
        )


def _train_restarts(args: argparse.Namespace, spec: Path, settings: dict[str, object], out: Path) -> Result:
    """``train --restarts R``: R seeds, the certified best returned; every run and restarts.csv under ``out``."""
    from ..training.files import write_csv
    from ..training.restarts import solve_restarts

    if args.resume or args.distributed:
        raise ValueError("--restarts does not combine with --resume or --distributed")
    settings = {k: v for k, v in settings.items() if k != "seed"}
    best, table = solve_restarts(
        spec,
        args.restarts,
        args.jobs,
        seed=args.seed,
        out=out,
        progress=None if args.progress else False,
        **settings,
    )
    write_csv(table, out / "restarts.csv")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"chose seed {best.config.seed} (constraints met, then the smallest kl_upper)\n")
    return best


def _train_grid(args: argparse.Namespace, spec: Path, settings: dict[str, object], out: Path) -> int:
    """``train --method grid``: the exact answer on a grid (one or two free coordinates), no flow."""
    import json

    import numpy as np

    from ..problem import load_spec
    from ..reference import solve_grid
    from ..training.files import atomic_write
    from ..viz import plot_exact_density

    flow_options = sorted(k for k in settings if k not in ("seed", "device", "dtype"))
    if args.resume or args.distributed or args.restarts > 1 or flow_options:
        given = ["--resume"] * bool(args.resume) + ["--distributed"] * args.distributed
        given += ["--restarts"] * (args.restarts > 1) + [_flag(k) for k in flow_options]
        raise ValueError(f"--method grid trains no flow; drop {', '.join(given)}")
    solution = solve_grid(load_spec(spec), args.grid_points)
    summary = {**solution.summary(), "spec": str(Path(spec).resolve())}
    atomic_write(out / "result.json", lambda f: f.write((json.dumps(summary, indent=2) + "\n").encode()))
    draws = solution.reference.sample(100_000, seed=args.seed).numpy()
    atomic_write(out / "samples.npy", lambda f: np.save(f, draws))
    plot_exact_density(solution.reference, solution.problem, out / "density.png", samples=draws)
    print(solution.table())
    print(f"wrote {out}/ (result.json, samples.npy: 100000 exact draws, density.png)")
    if not summary["converged"]:
        print("a constraint is off by more than 1% on the grid: try --grid-points N", file=sys.stderr)
        return NOT_CONVERGED
    return 0


def _grid_hint(problem: MaxEntProblem) -> str:
    """A line for flow runs of problems the grid solves exactly (one or two free coordinates)."""
    free = problem.support.flow_dim(problem.dim)
    if free > 2:
        return ""
    return f"(this problem has {free} free coordinate{'s' * (free > 1)}: --method grid solves it exactly in seconds)"


def train(args: argparse.Namespace) -> int:
    import signal

    from ..problem import load_spec, resolve_spec
    from ..training import solve
    from ..training.checkpoint import checked_spec, load_checkpoint

    if args.grid_points is not None and args.method != "grid":
        raise ValueError("--grid-points sets the grid of --method grid; add --method grid or drop it")
    if args.resume:
        out = Path(args.resume)
        state = load_checkpoint(out / "checkpoint.pt")
        given = resolve_spec(args.spec) if args.spec else None
        spec = checked_spec(given, state, out, "pass the spec file it was trained on")
        settings = _resume_settings(args, state)
    elif args.spec is None:
        raise ValueError("train needs a spec file (or --resume DIR)")
    else:
        spec, settings = resolve_spec(args.spec), _settings(args)  # a path, or a shipped spec's name
    problem = load_spec(spec)
    out = Path(args.resume or args.out or Path("runs") / problem.name)
    if not args.resume:
        _refuse_overwrite(out, args.force, "run")
    if args.method == "grid":
        return _train_grid(args, Path(spec), settings, out)
    settings = _default_time_limit(args, settings)
    if args.restarts > 1:
        result = _train_restarts(args, Path(spec), settings, out)
        return _report(result, out, restarts=True)
    if args.distributed:
        from ..training.distributed import finish_distributed, init_distributed

        if args.resume:
            raise ValueError("--resume and --distributed do not combine; resume in one process")
        world = init_distributed(str(settings.get("device", "cpu")))
    else:
        world = None
    signal.signal(signal.SIGTERM, _on_sigterm)  # a kill ends like Ctrl-C: the last checkpoint stays
    try:
        result = solve(
            problem,
            progress=None if args.progress else False,
            checkpoint=out / "checkpoint.pt",
            resume=bool(args.resume),
            spec_path=Path(spec).resolve(),
            world=world,
            **settings,
        )
        if world is not None:
            finish_distributed()
    except KeyboardInterrupt:
        if (out / "checkpoint.pt").is_file():
            print(f"interrupted; continue with: maxent-mdn train --resume {out}", file=sys.stderr)
        raise
    finally:
        if world is not None:
            finish_distributed(clean=False)  # a no-op after a clean finish
    if world is not None and not world.is_main:  # rank 0 writes and reports
        return 0 if result.converged else NOT_CONVERGED
    return _report(result, out)


def _report(result: Result, out: Path, restarts: bool = False) -> int:
    """Write the run, print its table, and give the exit code (3: not converged)."""
    from ..training.outputs import save_run

    save_run(result, out)
    print(result.table())
    files = "result.json, samples.npy, history.csv, model.pt, density.png, certificate.png"
    print(f"wrote {out}/ ({files}, {'restarts.csv, restarts/' if restarts else 'checkpoint.pt'})")
    hint = _grid_hint(result.problem)
    if hint:
        print(hint)
    if not result.converged:
        hint = "try more steps or restarts" if restarts else _more_steps_hint(result, out)
        print(f"not converged: {result.why_not_converged}; {hint}", file=sys.stderr)
        return NOT_CONVERGED
    return 0


def _more_steps_hint(result: Result, out: Path) -> str:
    """How to continue an unconverged run: more steps, or (without a step budget) more time."""
    if result.config.steps is None:
        return f"give it more time: maxent-mdn train --resume {out} (the clock starts anew; --time-limit SECONDS)"
    return f"try more steps: maxent-mdn train --resume {out} --steps N (N > {result.config.steps})"


def demo(args: argparse.Namespace) -> int:
    from ..problem import load_spec
    from ..training import solve

    settings = "default settings" if args.steps is None else f"default settings but {args.steps} steps"
    print(f"Solving the built-in example: max H(q) s.t. E[x^2] = 1, E[x^4] = 1.5 on R ({settings})")
    problem = load_spec("quartic_bimodal_1d")  # the shipped spec, from a checkout or a wheel
    budget = {} if args.steps is None else {"steps": args.steps}
    result = solve(problem, progress=None if args.progress else False, seed=args.seed, **budget)
    print(result.table())
    return 0 if result.converged else NOT_CONVERGED


def fit(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import torch

    from ..datasets import load_dataset
    from ..training.files import atomic_write, write_csv
    from ..training.fit import fit, make_density_model
    from ..viz.fit import plot_fit

    out = Path(args.out) if args.out else Path("runs") / f"fit-{args.dataset}-{args.model}"
    _refuse_overwrite(out, args.force, "fit")
    torch.manual_seed(args.seed)
    data = load_dataset(args.dataset, seed=args.seed)
    model = make_density_model(args.model, data.dim)
    result = fit(model, data, steps=args.steps, seed=args.seed, progress=None if args.progress else False)
    summary = {"dataset": args.dataset, "model": args.model, "seed": args.seed, **result.summary()}
    atomic_write(out / "result.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
    samples = model.sample((100_000,)).double().cpu().numpy()
    atomic_write(out / "samples.npy", lambda f: np.save(f, samples))
    write_csv(result.history, out / "history.csv")
    plot_fit(model, data, samples, out / "density.png", title=f"{args.model} on {args.dataset}")
    print(
        f"{args.dataset} / {args.model}: test log-likelihood {result.test_ll:.4f} ± {result.test_ll_stderr:.4f}"
        f" ({result.parameters} parameters, {result.steps} steps, {result.seconds:.1f} s)"
    )
    if result.test_ll_eq1 is not None:
        print(f"  eq. 1 (hard-mixture) density of the same model: {result.test_ll_eq1:.4f}")
    print(f"wrote {out}/ (result.json, samples.npy, history.csv, density.png)")
    return 0


def reproduce(args: argparse.Namespace) -> int:
    from ..experiments import EXPERIMENTS, ReproductionError, reproduce

    names = args.only or list(EXPERIMENTS)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    out = Path(args.out)
    try:
        tables = reproduce(names, quick=args.quick, seeds=seeds, jobs=args.jobs, out=out, fresh=args.fresh)
    except ReproductionError as err:
        print(f"maxent-mdn reproduce: {err}", file=sys.stderr)
        return 1
    for table, frame in tables.items():
        print(f"{out / (table + '.csv')}: {len(frame)} rows")
    return 0


def figures(args: argparse.Namespace) -> int:
    from ..viz.figures import draw_figures

    for path in draw_figures(args.results, args.out):
        print(path)
    return 0
