"""The ``maxent-mdn`` command line: the argument parser and ``main``."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ..model import BASE_CHOICES, DEFAULT_LAYERS, DEFAULTS, MIXTURE_MAX_DIM, SIMPLEX_MAPS, TRANSFORMS
from ..model.base import ESTIMATORS
from . import commands

__all__ = ["build_parser", "main"]

#: ``--base`` choices: "auto" and the model bases, plus the eq.-2 ablation (soft base, Concrete joint density)
CLI_BASES = (*BASE_CHOICES, "concrete-joint")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


THREADS_VARIABLE = "MAXENT_MDN_THREADS"


def _cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _default_threads() -> int:
    """Torch threads when ``--threads`` is not given: ``$MAXENT_MDN_THREADS`` if set, else every core this process
    may use. The variable lets a caller that shares the cores (pytest-xdist workers, a job scheduler) set the share
    once for every ``maxent-mdn`` it starts, in-process or not."""
    text = os.environ.get(THREADS_VARIABLE, "").strip()
    if not text:
        return _cores()
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"${THREADS_VARIABLE}: {err}") from None


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
        help=f"CPU threads for torch (default: ${THREADS_VARIABLE} if set, else all {_cores()} cores)",
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


def build_parser() -> argparse.ArgumentParser:
    """The ``maxent-mdn`` parser; each subcommand sets ``handler`` to the name of its function in :mod:`.commands`."""
    from ..datasets import DATASETS
    from ..experiments import EXPERIMENTS
    from ..training.fit import MODELS

    parser = argparse.ArgumentParser(
        prog="maxent-mdn",
        description="Maximum-entropy distributions with Gumbel-softmax mixture flows.",
        epilog="Exit codes: 0 done, 1 some reproduction runs failed, 2 bad input, 3 not converged (train, demo) or no exact samples (sample --exact), 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="solve the built-in bimodal example and print the result")
    demo.add_argument(
        "--steps", type=int, metavar="N", help="step budget (default 6000; a few hundred for a quick look)"
    )
    _common(demo)
    demo.set_defaults(handler="demo")

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
        help=(
            f"base distribution (default auto: gumbel-mog up to {MIXTURE_MAX_DIM} flow coordinates, gaussian "
            "above); concrete-joint = gumbel-mog trained with the eq. 2 density"
        ),
    )
    train.add_argument("--components", type=int, metavar="K", help="mixture components (default 8)")
    train.add_argument("--transform", choices=TRANSFORMS, help="flow layers (default spline)")
    train.add_argument("--layers", type=int, metavar="L", help=f"number of flow layers (default {layers})")
    train.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="step budget (default: none under the time limit, which ends an unconverged run; 6000 with "
        "--time-limit 0)",
    )
    train.add_argument("--batch", type=int, metavar="B", help="samples per step (default 1000)")
    train.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="finish within SECONDS, the verdict included: training stops while one more outer iteration and "
        "the verdict still fit at the pace so far (default 300 unless --steps is given, then none; 0: none, the "
        "step budget alone); a converged run stops before it; --resume continues a run it ended",
    )
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
    train.add_argument(
        "--gap-tol",
        type=float,
        metavar="NATS",
        help="converged needs the certified duality gap D(eta) - H(q) <= NATS (default 0.01)",
    )
    train.add_argument(
        "--kl-upper-tol",
        type=float,
        metavar="NATS",
        help="and the conservative end of the certified bound on KL(q || p*) <= NATS (default 0.02)",
    )
    train.add_argument(
        "--eval-samples",
        type=int,
        metavar="N",
        help="draws of the final verdict: entropy, constraint table, KL and certificate (default 200000, an "
        "entropy standard error near 0.002 nats; it grows as 1/sqrt(N)); the stop check draws as many unless "
        "--stop-samples says otherwise",
    )
    train.add_argument(
        "--stop-samples",
        type=int,
        metavar="N",
        help="stop early only when the certificate on N draws passes too (default 200000, as many as the final verdict; 0: the constraint test alone)",
    )
    train.add_argument(
        "--no-warm-start",
        dest="warm_start",
        action="store_false",
        default=None,
        help="start the multipliers at 0 (default: at the grid dual's answer where a grid finds it: one or two "
        "free coordinates, or statistics that touch at most two coordinates each on a product support)",
    )
    train.add_argument(
        "--gibbs-stage",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after 12 outer iterations without a certified stop, or from half the time limit if that comes first "
        "(after at least 4, with time left for 3 more), "
        "train on without the penalty: a reverse-KL fit to the Gibbs form exp(eta.T) with Newton steps of the "
        "multipliers (default on; --no-gibbs-stage keeps the penalty to the end)",
    )
    train.add_argument(
        "--tails",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end the flow with a learnable tail layer that makes its Gaussian tails exponential or lighter "
        f"(default {'on' if DEFAULTS.tails else 'off'})",
    )
    train.add_argument(
        "--simplex-map",
        choices=tuple(SIMPLEX_MAPS),
        help=f"the flow's last layer on a Simplex support (default {DEFAULTS.simplex_map})",
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
    train.add_argument(
        "--restarts",
        type=_positive_int,
        default=1,
        metavar="R",
        help="solve from seeds SEED..SEED+R-1 and keep the certified best (default 1); all in OUT/restarts/",
    )
    train.add_argument(
        "--jobs", type=_positive_int, default=1, metavar="J", help="restarts in parallel (default 1)"
    )
    train.add_argument(
        "--method",
        choices=("flow", "grid"),
        default="flow",
        help="flow: train a normalizing flow (default); grid: the exact answer on a grid, in seconds, for "
        "problems with one or two free coordinates",
    )
    train.add_argument(
        "--grid-points",
        type=_positive_int,
        metavar="N",
        help="--method grid: points per coordinate (default 4001 in 1D, 241 in 2D)",
    )
    _common(train)
    train.set_defaults(handler="train")

    draw = sub.add_parser(
        "sample",
        help="draw samples from a trained run: the flow's, or exact ones from its Gibbs form (--exact)",
        description="Write N draws of a trained run as .npy. With --exact, independent Metropolis-Hastings with "
        "the flow as proposal targets p_eta(x) = exp(eta.T(x) - log Z), eta and log Z from result.json.",
    )
    draw.add_argument(
        "run", metavar="RUN_DIR", help="a folder written by maxent-mdn train (model.pt, result.json)"
    )
    draw.add_argument("-n", type=_positive_int, required=True, metavar="N", help="number of samples")
    draw.add_argument(
        "--exact",
        action="store_true",
        help="samples of p_eta by Metropolis-Hastings (exit 3 if it mixes too slowly)",
    )
    draw.add_argument(
        "--spec", metavar="FILE", help="the spec file (default: the one RUN_DIR/checkpoint.pt records)"
    )
    draw.add_argument(
        "--out",
        metavar="FILE.npy",
        help="output file (default RUN_DIR/samples-exact.npy or RUN_DIR/samples-flow.npy)",
    )
    draw.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _global(draw, top=False)
    draw.set_defaults(handler="sample")

    fit = sub.add_parser(
        "fit", help="density estimation: fit a model to a 2D toy dataset by maximum likelihood"
    )
    fit.add_argument("dataset", choices=DATASETS, help=f"a seeded 2D toy dataset: {', '.join(DATASETS)}")
    fit.add_argument("--model", choices=MODELS, default="gumbel-mog", help="model (default gumbel-mog)")
    fit.add_argument("--steps", type=int, metavar="N", default=3000, help="training steps (default 3000)")
    fit.add_argument("--out", metavar="DIR", help="output folder (default runs/fit-<dataset>-<model>)")
    fit.add_argument("--force", action="store_true", help="overwrite a finished fit in the output folder")
    _common(fit)
    fit.set_defaults(handler="fit")

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
    rep.set_defaults(handler="reproduce")

    figs = sub.add_parser("figures", help="draw every figure from the experiment CSVs (PNG + PDF)")
    figs.add_argument(
        "--results",
        metavar="DIR",
        default="experiments/results",
        help="CSV folder (default experiments/results)",
    )
    figs.add_argument("--out", metavar="DIR", default="figures", help="figure folder (default figures)")
    _global(figs, top=False)
    figs.set_defaults(handler="figures")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some reproduction runs failed, 2 bad input, 3 not converged)."""
    args = build_parser().parse_args(argv)
    import torch

    from ..problem import SpecError
    from ..training.checkpoint import CheckpointError

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(args.threads or _default_threads())
        return getattr(commands, args.handler)(args)
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
