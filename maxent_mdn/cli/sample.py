"""``maxent-mdn sample``: draws from a trained run, from the flow or exactly from its Gibbs form."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["NOT_CERTIFIED", "sample"]

#: exit code when the flow is too far from p_eta for exact samples
NOT_CERTIFIED = 3


def _spec_for(run: Path, given: str | None) -> Path:
    """The spec file: ``--spec``, else the one the run's checkpoint records (and it must be unchanged)."""
    from ..training.checkpoint import CheckpointError, checked_spec, load_checkpoint

    if given is not None:  # the user's choice: used as it is, even if it differs from the trained one
        return Path(given)
    if not (run / "checkpoint.pt").is_file():
        raise CheckpointError(f"{run} has no checkpoint.pt to say which spec it solved; pass --spec FILE")
    return checked_spec(None, load_checkpoint(run / "checkpoint.pt"), run, "pass --spec FILE")


def _gibbs_parameters(run: Path, labels: list[str]) -> tuple[list[float], float, float]:
    """``eta`` (in the spec's row order), ``log Z`` and the flow's entropy from the run's ``result.json``."""
    from ..training.checkpoint import CheckpointError

    path = run / "result.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None
    eta = summary.get("eta")
    if not isinstance(eta, dict) or "log_partition" not in summary:
        raise CheckpointError(f"{path} holds no certificate (eta, log_partition): retrain with this version")
    missing = [label for label in labels if label not in eta]
    if missing:
        raise CheckpointError(
            f"{path} has no eta for row(s) {', '.join(missing)}: was it trained on this spec?"
        )
    return [float(eta[label]) for label in labels], float(summary["log_partition"]), float(summary["entropy"])


def _grid_run(run: Path) -> dict | None:
    """The ``result.json`` of a ``train --method grid`` run, else ``None``."""
    try:
        summary = json.loads((run / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("method") == "grid" else None


def _sample_grid(args: argparse.Namespace, run: Path, summary: dict) -> int:
    """Exact draws of a grid run: its stored answer (eta, box, points) rebuilt, checked against the spec, sampled."""
    import numpy as np

    from ..problem import load_spec
    from ..reference import GridReference
    from ..training.files import atomic_write

    spec = Path(args.spec or summary.get("spec", ""))
    if not spec.is_file():
        raise FileNotFoundError(
            f"{run}/result.json names the spec {str(spec)!r}, which is gone; pass --spec FILE"
        )
    problem = load_spec(spec)
    stored = summary.get("eta", {})
    if list(stored) != problem.labels:
        raise ValueError(
            f"{spec} has the rows {problem.labels}, the run {run} was solved for {list(stored)}: train it again"
        )
    ref = GridReference.rebuild(problem, np.array(list(stored.values())), summary["box"], summary["points"])
    table = ref.constraint_table()
    off = table[~table["within_1pct"]]
    if len(off):
        rows = ", ".join(
            f"{r.row} target {r.target:.6g}, the run's answer {r.value:.6g}" for r in off.itertuples()
        )
        raise ValueError(f"{spec} is not the problem {run} solved ({rows}): train it again")
    x = ref.sample(args.n, seed=args.seed).numpy()
    out = Path(args.out) if args.out else run / "samples-exact.npy"
    atomic_write(out, lambda f: np.save(f, x))
    print(f"wrote {out}: {x.shape[0]} x {x.shape[1]} (exact draws of the grid solution)")
    return 0


def sample(args: argparse.Namespace) -> int:
    """Write ``n`` draws as ``.npy``: the flow's own, or with ``--exact`` independent Metropolis–Hastings draws of p_eta."""
    import numpy as np
    import torch

    from ..certify import Gibbs, LowAcceptanceError
    from ..problem import load_spec
    from ..training.evaluate import sample_many
    from ..training.files import atomic_write
    from ..training.outputs import load_model

    run = Path(args.run)
    grid = _grid_run(run)
    if grid is not None:
        return _sample_grid(args, run, grid)
    flow, payload = load_model(run)
    out = Path(args.out) if args.out else run / ("samples-exact.npy" if args.exact else "samples-flow.npy")
    if args.exact:
        problem = load_spec(_spec_for(run, args.spec))
        if problem.dim != payload["problem"]["dim"]:
            raise ValueError(
                f"the spec has dimension {problem.dim}, the run's flow {payload['problem']['dim']}"
            )
        eta, log_z, entropy = _gibbs_parameters(run, problem.labels)
        gibbs = Gibbs.from_flow(problem, torch.tensor(eta, dtype=torch.float64), log_z, flow)
        try:
            draws = gibbs.sample_with_diagnostics(args.n, seed=args.seed)
        except LowAcceptanceError as err:
            print(f"maxent-mdn sample: could not sample exactly: {err}", file=sys.stderr)
            return NOT_CERTIFIED
        x = draws.samples
        note = (
            f"independent Metropolis-Hastings: acceptance {draws.acceptance:.1%}, thinning {draws.thin}, "
            f"{draws.chains} chains, {draws.proposals} flow draws"
        )
        upper, upper_se = Gibbs.log_partition_upper(draws)
        dual_upper = upper - float(torch.tensor(eta, dtype=torch.float64) @ problem.targets)
        print(
            f"log Z: {log_z:.4f} by importance sampling (biased low), <= {upper:.4f} ± {upper_se:.4f} from these "
            f"draws (E_p[eta.T - log q]); conservative dual bound D+ = {dual_upper:.4f} >= H*; D+ - H(q) = "
            f"{dual_upper - entropy:.4f} nats (a bound on KL(q || p*) where the flow meets the constraints)"
        )
    else:
        torch.manual_seed(args.seed)
        x, note = sample_many(flow, args.n), "plain flow samples"
    atomic_write(out, lambda f: np.save(f, x.numpy()))
    print(f"wrote {out}: {x.shape[0]} x {x.shape[1]} ({note})")
    return 0
