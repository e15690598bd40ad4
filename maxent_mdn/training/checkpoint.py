r"""Solver checkpoints: the complete state at an outer-iteration boundary, written atomically.

A checkpoint is taken after every outer iteration of the augmented Lagrangian
(after the multiplier and penalty updates, before the next inner run). At that
point Adam's moments are about to be reset and the tail average is empty, so
the state is small and complete: the flow's parameters, the multipliers
:math:`\lambda`, the penalty :math:`c`, the metric :math:`W`, the previous
violation norms, the step/outer/pass counters, the learning-rate scale left
by NaN rollbacks, the training history, and the torch and numpy RNG states.
Resuming from it replays the rest of the run exactly: on CPU the final
parameters are bit-identical to an uninterrupted run with the same seed. An
interrupted inner run (SIGINT, SIGTERM, a crash) loses at most
``inner_steps`` steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from .config import SolverConfig, saved_settings
from .files import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "checked_spec",
    "load_checkpoint",
    "save_checkpoint",
    "spec_digest",
]

CHECKPOINT_FORMAT = "maxent-mdn-checkpoint/1"
#: settings that may differ on resume (a larger step budget continues a run)
RESUMABLE_CHANGES = ("steps", "time_limit")


class CheckpointError(ValueError):
    """A checkpoint or model file that cannot be read or does not match; the message says why."""


def spec_digest(path: str | Path | None) -> str | None:
    """SHA-256 of a spec file's bytes (``None`` without a file)."""
    if path is None:
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def checked_spec(spec: str | Path | None, state: dict[str, Any], run: Path, fix: str) -> Path:
    """The spec file of a run to continue or sample from: ``spec`` (else the one ``state`` records), checked.

    It must exist and, where the checkpoint recorded the spec's SHA-256, be the
    same bytes that were trained on (a changed spec would silently change the
    problem). ``fix`` ends each message with what the user can do.

    Raises:
        CheckpointError: no spec given or recorded, or the spec changed since.
        SpecError: the file is gone.
    """
    from ..problem import SpecError

    recorded = spec is None
    spec = state.get("spec") if recorded else spec
    if spec is None:
        raise CheckpointError(f"{run}/checkpoint.pt does not say which spec it solves; {fix}")
    if not Path(spec).is_file():
        where = f" (recorded in {run}/checkpoint.pt)" if recorded else ""
        raise SpecError(f"spec file not found: {spec}{where}; {fix}")
    if state.get("spec_sha256") and spec_digest(spec) != state["spec_sha256"]:
        raise CheckpointError(f"spec {spec} changed since the checkpoint in {run} was written; {fix}")
    return Path(spec)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + rename)."""

    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def load_checkpoint(
    path: str | Path, cfg: SolverConfig | None = None, problem_name: str | None = None
) -> dict[str, Any]:
    """Read a checkpoint; with ``cfg``/``problem_name``, check it belongs to this run.

    Raises:
        CheckpointError: missing, unreadable or corrupt file, another format,
            another problem, or settings that differ (other than ``steps`` and ``time_limit``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any failure to unpickle means a corrupt file
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a maxent-mdn checkpoint (format {CHECKPOINT_FORMAT})")
    if problem_name is not None and state.get("problem") != problem_name:
        raise CheckpointError(
            f"checkpoint {path} is for problem {state.get('problem')!r}, not {problem_name!r}"
        )
    if cfg is not None:
        saved = saved_settings(state.get("config", {}))
        now = dataclasses.asdict(cfg)
        diff = sorted(k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k])
        if diff:
            pairs = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)
            raise CheckpointError(f"checkpoint {path} was made with other settings ({pairs})")
    return state
