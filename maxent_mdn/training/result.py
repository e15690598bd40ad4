"""``Result``: what a solve returns, with its JSON summary and text table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd
import torch

from ..certify import Certified, Gibbs
from ..model import MaxEntModel
from ..problem.spec import MaxEntProblem
from ..reference import Reference
from .config import SolverConfig

__all__ = ["Result"]


@dataclass
class Result:
    """The outcome of :func:`solve`.

    Attributes:
        flow: the trained flow (in eval mode).
        problem: the problem solved.
        entropy, entropy_stderr: :math:`\\hat H` from a large independent nested batch.
        constraints: one row per scalar constraint (name, index, relation, target, value, stderr, ...).
        history: training trace (step, entropy, each violation ``g:…``, ``lambda:…``, c, tau, seconds;
            after each outer iteration ``entropy_is``, ``dual_bound``, ``gap`` and ``ess``).
        reference: the exact answer, when one is available.
        kl_to_reference, kl_stderr: :math:`\\mathrm{KL}(q\\|p^*)` with the model's density.
        kl_knn: the same with a nearest-neighbour entropy (independent of the model's density).
        converged: the constraints are met (``constraints_met``)
            and the dual certificate's gap is at most ``gap_tol``, its bound on KL(q‖p*) at most
            ``kl_upper_tol`` (see ``why_not_converged``).
        seconds: wall-clock time of training and evaluation.
        config: the settings used.
        certificate: the dual bound at the polished natural parameters
            (:mod:`maxent_mdn.certify`), ``None`` without constraints.
        constraints_met: whether the last ``patience`` constraint tests all passed and every row of
            ``constraints`` is within its tolerance (``within_1pct``).
        why_not_converged: ``None`` if converged, else the reason in one clause.
        custom_model: the flow was passed to ``solve(model=...)``, not built from ``config``
            (``config``'s architecture fields then do not describe it).
        kept_step: the step of the flow returned, when training went on past its certified best
            passing state and ended elsewhere (:func:`~maxent_mdn.training.loop.keep_best`); ``None``:
            the final state.
    """

    flow: MaxEntModel
    problem: MaxEntProblem
    entropy: float
    entropy_stderr: float
    constraints: pd.DataFrame
    history: pd.DataFrame
    reference: Reference | None
    kl_to_reference: float | None
    kl_stderr: float | None
    kl_knn: float | None
    entropy_knn: float | None
    max_abs_violation: float
    converged: bool
    seconds: float
    config: SolverConfig
    lagrangian: dict[str, object] = field(default_factory=dict)
    certificate: Certified | None = None
    constraints_met: bool = False
    why_not_converged: str | None = None
    custom_model: bool = False
    kept_step: int | None = None

    def summary(self) -> dict[str, object]:
        """JSON-ready summary (what ``result.json`` holds)."""
        return {
            "problem": self.problem.name,
            "base": "custom" if self.custom_model else self.config.base,
            "entropy": self.entropy,
            "entropy_stderr": self.entropy_stderr,
            "entropy_knn": self.entropy_knn,
            "constraints": [
                {k: row[k] for k in ("row", "name", "index", "relation", "target", "value", "stderr")}
                for row in self.constraints.to_dict("records")
            ],
            "max_abs_violation": self.max_abs_violation,
            "reference_entropy": None if self.reference is None else self.reference.entropy,
            "reference_kind": None if self.reference is None else self.reference.kind,
            "kl_to_reference": self.kl_to_reference,
            "kl_stderr": self.kl_stderr,
            "kl_knn": self.kl_knn,
            "converged": self.converged,
            "constraints_met": self.constraints_met,
            "why_not_converged": self.why_not_converged,
            "seconds": self.seconds,
            "kept_step": self.kept_step,
            **(self.certificate.summary(self.problem.labels) if self.certificate is not None else {}),
            "config": dataclasses.asdict(self.config),
        }

    def gibbs(self) -> Gibbs:
        r"""The answer in exponential-family form, :math:`p_{\hat\eta}(x) = \exp(\hat\eta^\top T(x) - \log \hat Z)`.

        :math:`\hat\eta` and :math:`\log \hat Z` are the certificate's (the polished
        multipliers); ``log_prob`` is exact up to the error of :math:`\log \hat Z`,
        ``sample`` draws by independent Metropolis–Hastings with the flow as proposal
        (:class:`~maxent_mdn.certify.Gibbs`).
        """
        if self.certificate is None:
            raise ValueError(
                "this problem has no constraint rows, so no natural parameters (its answer is uniform)"
            )
        cert = self.certificate
        eta = torch.tensor(cert.certificate.eta, dtype=torch.float64)  # the eta log Z was measured at
        return Gibbs.from_flow(self.problem, eta, cert.certificate.log_partition, self.flow)

    def table(self) -> str:
        """The constraint table and headline numbers as text."""
        lines = [f"problem {self.problem.name}: base {self.config.base}, {self.seconds:.1f} s"]
        lines.append(f"entropy {self.entropy:.4f} ± {self.entropy_stderr:.4f}")
        if self.reference is not None:
            lines.append(f"reference entropy {self.reference.entropy:.4f} ({self.reference.kind})")
            lines.append(f"KL(q || p*) {self.kl_to_reference:.4f} ± {self.kl_stderr:.4f} (model density)")
            if self.kl_knn is not None:
                lines.append(f"KL(q || p*) {self.kl_knn:.4f} (nearest-neighbour entropy)")
        if self.certificate is not None:
            cert = self.certificate.certificate
            trust = (
                ""
                if cert.reliable
                else f", UNRELIABLE: {cert.missing_note}"
                if cert.misses_mass
                else ", UNRELIABLE: importance weights too uneven"
            )
            lines.append(
                f"dual bound D(eta) {cert.dual_bound:.4f} ± {cert.dual_bound_stderr:.4f} (>= H*); "
                f"gap D - H(q) {cert.gap:.4f} ± {cert.gap_stderr:.4f}, at most {cert.gap_upper:.4f} "
                f"(ESS {100 * cert.ess:.0f}%, k {cert.pareto_k:.2f}{trust}); KL(q || p*) <= {cert.kl_upper:.4f}"
            )
        cols = ["row", "relation", "target", "value", "stderr"]
        lines.append(self.constraints[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        lines.append(
            f"converged: {self.converged}"
            + (f" ({self.why_not_converged})" if self.why_not_converged else "")
        )
        return "\n".join(lines)
