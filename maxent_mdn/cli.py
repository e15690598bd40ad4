"""The ``maxent-mdn`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .model import BASES, DEFAULT_LAYERS, TRANSFORMS
from .objective import ESTIMATORS

__all__ = ["main"]

#: exit code when training ends without passing the convergence test
NOT_CONVERGED = 3


#: ``--base`` choices: the model bases, plus the eq.-2 ablation (soft base, Concrete joint density)
CLI_BASES = (*BASES, "concrete-joint")


def _settings(args: argparse.Namespace) -> dict[str, object]:
    keys = ("base", "components", "transform", "layers", "steps", "tau", "seed", "estimator", "batch", "lr")
    keys += ("anneal_rate", "device", "dtype")
    settings = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if settings.get("base") == "concrete-joint":
        if settings.get("estimator", "concrete-joint") != "concrete-joint":
            raise ValueError("--base concrete-joint fixes the estimator; drop --estimator")
        settings.update(base="gumbel-mog", estimator="concrete-joint")
    return settings


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _resume_settings(args: argparse.Namespace, state: dict[str, object]) -> dict[str, object]:
    """The checkpoint's settings; only ``--steps`` may change them."""
    given = {k for k, v in _settings(args).items() if k not in ("steps", "seed") and v is not None}
    if given or args.seed != 0:
        names = ", ".join(
            f"--{k.replace('_', '-')}" for k in sorted(given | ({"seed"} if args.seed else set()))
        )
        raise ValueError(
            f"--resume continues a run with its own settings; drop {names} (only --steps may change)"
        )
    settings = dict(state["config"])  # type: ignore[arg-type]
    if args.steps is not None:
        settings["steps"] = args.steps
    return settings


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


def _train(args: argparse.Namespace) -> int:
    import signal

    from .problem import SpecError, load_spec
    from .training import solve
    from .training.checkpoint import CheckpointError, load_checkpoint, spec_digest
    from .training.outputs import save_run

    if args.resume:
        out = Path(args.resume)
        state = load_checkpoint(out / "checkpoint.pt")
        spec = args.spec or state.get("spec")
        if spec is None:
            raise CheckpointError(
                f"{out}/checkpoint.pt does not say which spec it solves; pass the spec file"
            )
        if not Path(spec).is_file():
            raise SpecError(f"spec file not found: {spec} (recorded in the checkpoint)")
        if state.get("spec_sha256") and spec_digest(spec) != state["spec_sha256"]:
            raise CheckpointError(f"spec {spec} changed since the checkpoint in {out} was written")
        settings = _resume_settings(args, state)
    elif args.spec is None:
        raise ValueError("train needs a spec file (or --resume DIR)")
    else:
        spec, settings = args.spec, _settings(args)
    problem = load_spec(spec)
    out = Path(args.resume or args.out or Path("runs") / problem.name)
    if not args.resume:
        _refuse_overwrite(out, args.force, "run")
    if args.distributed:
        from .training.distributed import finish_distributed, init_distributed

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
    save_run(result, out)
    print(result.table())
    print(f"wrote {out}/ (result.json, samples.npy, history.csv, model.pt, density.png, checkpoint.pt)")
    if not result.converged:
        print(
            "not converged: the constraints are not all met within sampling error; "
            f"try more steps: maxent-mdn train --resume {out} --steps N (N > {result.config.steps})",
            file=sys.stderr,
        )
        return NOT_CONVERGED
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .examples import quartic_bimodal_1d
    from .training import solve

    print("Solving the built-in example: max H(q) s.t. E[x^2] = 1, E[x^4] = 1.5 on R (default settings)")
    result = solve(quartic_bimodal_1d(), progress=None if args.progress else False, seed=args.seed)
    print(result.table())
    return 0 if result.converged else NOT_CONVERGED


def _fit(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import torch

    from .datasets import load_dataset
    from .training.fit import fit, make_density_model
    from .training.outputs import atomic_write, write_csv
    from .viz.fit import plot_fit

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


def _reproduce(args: argparse.Namespace) -> int:
    from .experiments import EXPERIMENTS, ReproductionError, reproduce

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


def _figures(args: argparse.Namespace) -> int:
    from .viz.figures import draw_figures

    for path in draw_figures(args.results, args.out):
        print(path)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _global(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--debug`` and ``--threads``, accepted before or after the subcommand."""
    keep = {} if top else {"default": argparse.SUPPRESS}  # a subcommand's copy never resets the top one
    parser.add_argument(
        "--debug", action="store_true", help="on an error, also show the traceback (exit codes stay)", **keep
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help=f"CPU threads for torch (default: all {_cores()} cores)",
        **keep,
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="print no progress (default: a bar on a terminal, otherwise a log line every 10 s)",
    )
    _global(parser, top=False)


def _parser() -> argparse.ArgumentParser:
    from .datasets import DATASETS
    from .experiments import EXPERIMENTS
    from .training.fit import MODELS

    parser = argparse.ArgumentParser(
        prog="maxent-mdn",
        description="Maximum-entropy distributions with Gumbel-softmax mixture flows.",
        epilog="Exit codes: 0 done, 1 some reproduction runs failed, 2 bad input, 3 not converged, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="solve the built-in bimodal example and print the result")
    _common(demo)
    demo.set_defaults(run=_demo)

    by_count: dict[int, list[str]] = {}
    for name, count in DEFAULT_LAYERS.items():
        by_count.setdefault(count, []).append(name)
    layers = ", ".join(f"{n} for {' and '.join(names)}" for n, names in by_count.items())
    train = sub.add_parser(
        "train",
        help="solve the max-ent problem of a spec file",
        description="Train a flow to the maximum-entropy distribution of a spec file's constraints.",
    )
    train.add_argument("spec", nargs="?", help="a Python file defining `problem = MaxEntProblem(...)`")
    train.add_argument("--resume", metavar="DIR", help="continue the run whose checkpoint is in DIR")
    train.add_argument(
        "--base",
        choices=CLI_BASES,
        help="base distribution (default gumbel-mog); concrete-joint = gumbel-mog trained with the eq. 2 density",
    )
    train.add_argument("--components", type=int, metavar="K", help="mixture components (default 8)")
    train.add_argument("--transform", choices=TRANSFORMS, help="flow layers (default spline)")
    train.add_argument("--layers", type=int, metavar="L", help=f"number of flow layers (default {layers})")
    train.add_argument("--steps", type=int, metavar="N", help="step budget (default 6000)")
    train.add_argument("--batch", type=int, metavar="B", help="samples per step (default 1000)")
    train.add_argument(
        "--lr", type=float, help="Adam learning rate (default 2e-3, decayed per outer iteration)"
    )
    train.add_argument("--tau", type=float, metavar="T", help="Gumbel-softmax temperature (default 0.5)")
    train.add_argument(
        "--anneal-rate", type=float, metavar="R", help="temperature annealing rate (default 0: constant)"
    )
    train.add_argument(
        "--estimator", choices=ESTIMATORS, help="base density for the entropy (default nested)"
    )
    train.add_argument("--device", help="torch device, e.g. cpu or cuda (default cpu)")
    train.add_argument("--dtype", choices=("float32", "float64"), help="precision (default float32)")
    train.add_argument(
        "--out", metavar="DIR", help="output folder (default runs/<problem name>); holds checkpoint.pt"
    )
    train.add_argument(
        "--force", action="store_true", help="overwrite a finished or interrupted run in the output folder"
    )
    train.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the processes torchrun starts: torchrun --nproc_per_node N -m maxent_mdn train ...",
    )
    _common(train)
    train.set_defaults(run=_train)

    fit = sub.add_parser(
        "fit", help="density estimation: fit a model to a 2D toy dataset by maximum likelihood"
    )
    fit.add_argument("dataset", choices=DATASETS, help=f"a seeded 2D toy dataset: {', '.join(DATASETS)}")
    fit.add_argument("--model", choices=MODELS, default="gumbel-mog", help="model (default gumbel-mog)")
    fit.add_argument("--steps", type=int, metavar="N", default=3000, help="training steps (default 3000)")
    fit.add_argument("--out", metavar="DIR", help="output folder (default runs/fit-<dataset>-<model>)")
    fit.add_argument("--force", action="store_true", help="overwrite a finished fit in the output folder")
    _common(fit)
    fit.set_defaults(run=_fit)

    rep = sub.add_parser("reproduce", help="run the reproduction experiments; one CSV per table")
    mode = rep.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke test: short budgets, one seed (minutes)")
    mode.add_argument("--full", dest="quick", action="store_false", help="the committed results (default)")
    rep.add_argument(
        "--only",
        nargs="+",
        choices=EXPERIMENTS,
        metavar="NAME",
        help=f"experiments to run (default: all): {', '.join(EXPERIMENTS)}",
    )
    rep.add_argument("--seeds", type=int, metavar="S", help="seeds per setting (default 3; 1 with --quick)")
    rep.add_argument(
        "--jobs", type=int, metavar="J", default=2, help="runs in parallel, one thread each (default 2)"
    )
    rep.add_argument(
        "--out", metavar="DIR", default="experiments/results", help="CSV folder (default experiments/results)"
    )
    rep.add_argument(
        "--fresh",
        action="store_true",
        help="redo the selected experiments' runs (default: skip runs journalled in OUT/runs.jsonl)",
    )
    _global(rep, top=False)
    rep.set_defaults(run=_reproduce)

    figs = sub.add_parser("figures", help="draw every figure from the experiment CSVs (PNG + PDF)")
    figs.add_argument(
        "--results",
        metavar="DIR",
        default="experiments/results",
        help="CSV folder (default experiments/results)",
    )
    figs.add_argument("--out", metavar="DIR", default="figures", help="figure folder (default figures)")
    _global(figs, top=False)
    figs.set_defaults(run=_figures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some reproduction runs failed, 2 bad input, 3 not converged)."""
    args = _parser().parse_args(argv)
    import torch

    from .problem import SpecError
    from .training.outputs import CheckpointError

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or _cores())
    try:
        return args.run(args)
    except (
        SpecError,
        CheckpointError,
        ValueError,
        TypeError,
        FileNotFoundError,
        FileExistsError,
        FloatingPointError,
    ) as err:
        if args.debug:
            traceback.print_exc()
        print(f"maxent-mdn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"maxent-mdn {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        torch.set_num_threads(threads)  # main() called in-process leaves the caller's setting
