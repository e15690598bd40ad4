"""Performance benchmarks of the nested kernel and the training step (``python -m benchmarks.run``).

Measures, in one process, and writes ``benchmarks/results.json`` plus a table:

1. nested log-density forward+backward for n = n' in {1024, 4096, 16384} and
   D in {2, 16, 64}: seconds; GFLOP/s counting the three (n x (2D+1)) by
   ((2D+1) x n') products the math needs (one forward, two backward; the
   implementation recomputes the forward block in the backward, a fourth);
   ``ratio_to_matmul`` = time of those three products as plain ``torch.matmul``
   calls / the kernel's time (1 = matmul speed); ``ratio_to_exp`` = the
   kernel's time / one elementwise ``exp`` over an n x n' tensor into a new
   tensor, ``ratio_to_exp_inplace`` the same against ``exp`` into memory
   already written once (no page faults: the pure pass); and the
   speedup over the naive broadcast (n x n' x D tensor; skipped where that
   tensor would exceed 2 GiB);
2. peak memory of (1) at n = 16384, D = 16 (growth of the resident set over
   its value before the call, in a fresh subprocess);
3. one augmented-Lagrangian training step of the default Gumbel-MoG flow vs
   the same flow with a Gaussian base, batch 1024, D in {2, 8};
4. the same step of the Gaussian-base flow built with zuko (``pip install
   zuko``, the ``benchmark`` extra; skipped without it): zuko's ``NSF`` with the
   same depth (4 rational-quadratic spline couplings, 16 bins, two hidden
   layers of 64 SiLU units). zuko samples through the *inverse* of its
   transforms, which for its coupling layers (``passes=2``) runs each
   conditioner twice; the fair yardstick is the flow inverted with
   ``LazyInverse`` so that sampling takes the one-pass direction, as ours
   does. Both are reported; ``ratio_to_zuko`` is against the faster.

``--quick`` uses n in {1024, 4096} only. Timings are the median of several
repetitions after a warm-up, on ``torch.get_num_threads()`` threads; the
training steps of items 3-4 are timed in alternating rounds, so that the
drift of a shared machine's speed does not bias their ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from maxent_mdn.model import make_flow
from maxent_mdn.model.base.kernels import log_mean_gaussian
from maxent_mdn.objective.lagrangian import AugmentedLagrangian

OUT = Path(__file__).resolve().parent / "results.json"


def _time(fn: Callable[[], object], reps: int = 5, budget: float = 20.0) -> float:
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget:
            break
    return statistics.median(times)


def _naive(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    diff = (z.unsqueeze(1) - loc.unsqueeze(0)) / scale.unsqueeze(0)
    log_n = -0.5 * diff.pow(2).sum(-1) - scale.log().sum(-1) - 0.5 * z.shape[1] * math.log(2 * math.pi)
    return torch.logsumexp(log_n, 1) - math.log(loc.shape[0])


def _flops(n: int, m: int, d: int) -> float:
    """Flops of the three (n x (2D+1)) @ ((2D+1) x m) products the math needs: one forward, two backward."""
    return 3 * 2.0 * n * m * (2 * d + 1)


def kernel_case(n: int, d: int) -> dict[str, float]:
    """Forward+backward of the nested kernel at n = n' and dimension d, against its yardsticks."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, d, generator=g, requires_grad=True)
    loc = torch.randn(n, d, generator=g, requires_grad=True)
    scale = (0.5 + torch.rand(n, d, generator=g)).requires_grad_()

    def fused() -> None:
        log_mean_gaussian(z, loc, scale).sum().backward()

    a, b = torch.randn(n, 2 * d + 1), torch.randn(2 * d + 1, n)
    big = torch.randn(n, n)
    row = {"n": n, "D": d, "seconds": _time(fused)}
    row["gflops"] = _flops(n, n, d) / row["seconds"] / 1e9
    row["matmul_seconds"] = 3 * _time(lambda: a @ b)  # the same three products as plain matmuls
    row["ratio_to_matmul"] = row["matmul_seconds"] / row["seconds"]  # 1 = matmul speed
    row["exp_seconds"] = _time(lambda: torch.exp(big))
    row["ratio_to_exp"] = row["seconds"] / row["exp_seconds"]  # how many exp passes the kernel costs
    # the same pass into memory already mapped: the pure arithmetic, without the page faults of a
    # fresh n x n' allocation (which the kernel, allocating O(n * chunk), mostly avoids)
    out = torch.zeros_like(big)
    row["exp_inplace_seconds"] = _time(lambda: torch.exp(big, out=out))
    row["ratio_to_exp_inplace"] = row["seconds"] / row["exp_inplace_seconds"]
    if n * n * d * 4 <= 2 * 2**30:

        def naive() -> None:
            _naive(z, loc, scale).sum().backward()

        row["naive_seconds"] = _time(naive, reps=3)
        row["speedup_over_naive"] = row["naive_seconds"] / row["seconds"]
    return row


def peak_memory(n: int = 16384, d: int = 16) -> float:
    """Peak resident-set growth (GiB) during one forward+backward, in a fresh process.

    Resets the kernel's high-water mark (``/proc/self/clear_refs``) right
    before the call, so the peak of importing torch does not hide it.
    """
    code = f"""
import torch
from maxent_mdn.model.base.kernels import log_mean_gaussian
def kib(key):
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key))
z = torch.randn({n}, {d}, requires_grad=True); loc = torch.randn({n}, {d}, requires_grad=True)
scale = (0.5 + torch.rand({n}, {d})).requires_grad_()
log_mean_gaussian(z[:64], loc[:64], scale[:64]).sum().backward()
open('/proc/self/clear_refs', 'w').write('5')
before = kib('VmRSS:')
log_mean_gaussian(z, loc, scale).sum().backward()
print((kib('VmHWM:') - before) / 2**20)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _step_fn(
    module: torch.nn.Module, draw: Callable[[], tuple[torch.Tensor, torch.Tensor]], d: int
) -> Callable[[], None]:
    """One augmented-Lagrangian step (sample, density, statistics, loss, backward, Adam) on ``draw()``."""
    alm = AugmentedLagrangian(torch.ones(2 * d), ["=="] * (2 * d))
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)

    def step() -> None:
        x, log_q = draw()
        loss, _ = alm.loss(torch.cat([x, x**2], -1), log_q)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def _interleaved(steps: list[Callable[[], None]], rounds: int = 8, reps: int = 5) -> list[float]:
    """Median step time of each function, timed in alternating rounds.

    The machine's speed drifts by tens of percent over seconds on a shared VM;
    alternating puts every function under the same drift, so their ratios are
    stable even where the absolute times are not.
    """
    times: list[list[float]] = [[] for _ in steps]
    for step in steps:
        step()  # warm-up
    for _ in range(rounds):
        for fn, out in zip(steps, times, strict=True):
            for _ in range(reps):
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
    return [statistics.median(out) for out in times]


def flow_step(base: str, d: int, batch: int = 1024) -> Callable[[], None]:
    """A training step of the default flow (spline couplings) with the given base."""
    torch.manual_seed(0)
    flow = make_flow(d, base=base, transform="spline", bins=16)
    return _step_fn(flow, lambda: flow.rsample_and_log_prob(batch), d)


def zuko_step(d: int, batch: int = 1024, inverted: bool = True) -> Callable[[], None] | None:
    """Item 4: the Gaussian-base step with zuko's NSF of the same architecture (``None`` without zuko)."""
    try:
        import zuko
    except ImportError:
        return None
    torch.manual_seed(0)
    nsf = zuko.flows.NSF(
        d, transforms=4, bins=16, passes=2, hidden_features=(64, 64), activation=torch.nn.SiLU
    )
    flow = zuko.flows.Flow(zuko.flows.LazyInverse(nsf.transform), nsf.base) if inverted else nsf
    return _step_fn(flow, lambda: flow().rsample_and_log_prob((batch,)), d)


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmarks; print a table and write ``results.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="kernel sizes n in {1024, 4096} only")
    parser.add_argument(
        "--steps-only",
        action="store_true",
        help="only the training-step comparison (items 3-4); the kernel results in results.json are kept",
    )
    args = parser.parse_args(argv)
    sizes = (1024, 4096) if args.quick else (1024, 4096, 16384)
    report: dict[str, object] = {
        "machine": f"{platform.machine()} {platform.processor()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
    }
    if args.steps_only and OUT.is_file():
        previous = json.loads(OUT.read_text())
        report.update({k: previous[k] for k in ("kernel", "peak_memory_gib_n16384_d16") if k in previous})
    kernel = [] if not args.steps_only else report.get("kernel", [])
    for n in () if args.steps_only else sizes:
        for d in (2, 16, 64):
            row = kernel_case(n, d)
            kernel.append(row)
            naive = f"{row['speedup_over_naive']:.1f}x" if "speedup_over_naive" in row else "-"
            print(
                f"nested n={n:6d} D={d:3d}: {row['seconds'] * 1e3:9.1f} ms  {row['gflops']:6.1f} GFLOP/s  "
                f"matmul ratio {row['ratio_to_matmul']:.2f}  exp passes {row['ratio_to_exp']:.1f} "
                f"(in place {row['ratio_to_exp_inplace']:.1f})  naive {naive}",
                flush=True,
            )
    report["kernel"] = kernel
    if not args.quick and not args.steps_only:
        report["peak_memory_gib_n16384_d16"] = peak_memory()
        print(f"peak memory n=16384 D=16: {report['peak_memory_gib_n16384_d16']:.3f} GiB", flush=True)
    steps = []
    for d in (2, 8):
        zuko_fast, zuko_native = zuko_step(d), zuko_step(d, inverted=False)
        fns = [flow_step("gumbel-mog", d), flow_step("gaussian", d)]
        if zuko_fast is not None and zuko_native is not None:
            fns += [zuko_fast, zuko_native]
        gumbel, gaussian, *zuko = _interleaved(fns)
        row = {"D": d, "gumbel_mog_s": gumbel, "gaussian_s": gaussian, "ratio": gumbel / gaussian}
        versus = ""
        if zuko:
            row.update(zuko_inverted_s=zuko[0], zuko_native_s=zuko[1])
            row["ratio_to_zuko"] = gaussian / min(zuko)
            versus = (
                f"; zuko NSF {min(zuko) * 1e3:.1f} ms (native direction "
                f"{zuko[1] * 1e3:.1f} ms), ours/zuko {row['ratio_to_zuko']:.2f}"
            )
        steps.append(row)
        print(
            f"training step D={d}: gumbel-mog {gumbel * 1e3:.1f} ms, gaussian {gaussian * 1e3:.1f} ms, "
            f"ratio {gumbel / gaussian:.2f}{versus}",
            flush=True,
        )
    report["training_step"] = steps
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {OUT}")
    return report


if __name__ == "__main__":
    main()
