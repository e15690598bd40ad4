r"""Reflections that leave the statistics unchanged, and the certificate's check that the flow covers their images.

Importance sampling sees only the mass its proposal visits. On ``modes-2d`` (the
constraints fix :math:`\mathbb E x_i^2` and :math:`\mathbb E x_i^4`, so each
marginal, not which of the four corners are joined) a flow with its mass on
two diagonal corners meets every constraint, and its weights
:math:`w = \eta^\top T - \log q` are *constant*: the certificate reads gap
:math:`\approx 0`, ESS 100%, :math:`\hat k < 0`, while
:math:`\mathrm{KL}(q\,\|\,p^*) = \log 2` (measured: gap −0.003, ``kl_upper``
0.007, "reliable"). No diagnostic of the weights can see mass that the
proposal never proposes.

A reflection :math:`g(x) = c + s \odot (x - c)`, :math:`s \in \{\pm 1\}^D`, that
maps the support onto itself and leaves the statistics unchanged
(:math:`T \circ g = T`) leaves :math:`Z(\eta)` and :math:`p_\eta` unchanged.
Each :math:`q \circ g` is a density (:math:`|\det g| = 1`), so for a set
:math:`S` of such reflections

.. math::

    q_S(y) = \frac{1}{|S|} \sum_{g \in S} q(g\, y)

is an importance proposal for the same :math:`Z` that visits every reflected
image of the flow's mass (draw :math:`x \sim q`, :math:`g` uniform on
:math:`S`, :math:`y = g x`; reflections are involutions). When :math:`S` is a
group, :math:`\mathrm{KL}(p_\eta\,\|\,q_S) \le \mathrm{KL}(p_\eta\,\|\,q)`
(convexity, :math:`p_\eta \circ g = p_\eta`). :func:`missing_mass` measures

.. math::

    m = \log \hat Z_{q_S} - \log \hat Z_q

on the same draws (the flow's density evaluated the same way in both), the
nats by which the flow's own estimate of :math:`\log Z` falls short; the
certificate adds :math:`\max(0, m)` to its conservative end.

Found here: per-coordinate reflections about 0 (support :class:`Real`) or about
the midpoint (:class:`Interval`), each kept when :math:`T` is unchanged on
draws of the flow; all :math:`2^k` sign patterns of the :math:`k` reflectable
coordinates when :math:`2^k \le` ``max_maps``, else the identity and
``max_maps - 1`` random patterns (the check then sees only those images).
Not found: permutations of exchangeable coordinates, reflections about other
centres, symmetries of the simplex.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..problem.spec import MaxEntProblem
from ..problem.support import Interval, Real

__all__ = ["Reflections", "find_reflections", "missing_mass"]

#: at most this many reflections in the check (each costs one density evaluation per draw)
MAX_MAPS = 16


@dataclass(frozen=True)
class Reflections:
    r"""The maps :math:`g_j(x) = c + s_j \odot (x - c)`; row 0 of ``signs`` is the identity.

    Example:
        >>> r = Reflections(torch.zeros(2, dtype=torch.float64), torch.tensor([[1.0, 1.0], [-1.0, 1.0]]))
        >>> r.apply(torch.tensor([[0.5, 2.0]]), r.signs[1:]).tolist()
        [[-0.5, 2.0]]
    """

    centre: Tensor
    signs: Tensor

    def apply(self, x: Tensor, signs: Tensor) -> Tensor:
        """``x`` ``(n, D)`` reflected by ``signs`` ``(n, D)`` (one pattern per point, or one for all)."""
        centre = self.centre.to(x)
        return centre + signs.to(x) * (x - centre)


def find_reflections(
    problem: MaxEntProblem, x: Tensor, max_maps: int = MAX_MAPS, seed: int = 0
) -> Reflections | None:
    """The coordinate reflections that keep the support and leave ``problem``'s statistics unchanged on draws ``x``.

    ``None`` when there is none (or no support it knows how to reflect).

    Example:
        >>> from maxent_mdn import Expectation
        >>> even = MaxEntProblem(2, [Expectation(lambda x: x.pow(2).sum(-1), 2.0)])
        >>> find_reflections(even, torch.randn(64, 2)).signs.shape
        torch.Size([4, 2])
    """
    support = problem.support
    if isinstance(support, Interval):
        centre = torch.full((problem.dim,), 0.5 * (support.low + support.high), dtype=torch.float64)
    elif isinstance(support, Real):
        centre = torch.zeros(problem.dim, dtype=torch.float64)
    else:
        return None
    x = x[:1024].double()
    with torch.no_grad():
        stats = problem.statistics(x).double()
        tol = 1e-9 * (1.0 + stats.abs().amax(0))
        flippable = []
        for i in range(problem.dim):
            y = x.clone()
            y[:, i] = 2.0 * centre[i] - y[:, i]
            if bool(((problem.statistics(y).double() - stats).abs() <= tol).all()):
                flippable.append(i)
    if not flippable:
        return None
    k = len(flippable)
    if 2**k <= max_maps:
        patterns = torch.tensor(list(itertools.product((1.0, -1.0), repeat=k)), dtype=torch.float64)
    else:
        gen = torch.Generator().manual_seed(seed)
        chosen = {tuple([1.0] * k)}
        while len(chosen) < max_maps:
            chosen.add(tuple((1.0 - 2.0 * torch.randint(0, 2, (k,), generator=gen)).tolist()))
        patterns = torch.tensor(sorted(chosen, reverse=True), dtype=torch.float64)
    signs = torch.ones(len(patterns), problem.dim, dtype=torch.float64)
    signs[:, flippable] = patterns
    return Reflections(centre, signs)


def missing_mass(
    log_prob: Callable[[Tensor], Tensor],
    problem: MaxEntProblem,
    eta: Tensor,
    x: Tensor,
    reflections: Reflections,
    seed: int = 0,
) -> tuple[float, float]:
    r""":math:`\log \hat Z_{q_S} - \log \hat Z_q` and its standard error, from draws ``x`` of the flow.

    ``log_prob`` evaluates :math:`\log q` at points ``(n, D)`` (float64 in, ``(n,)`` out). Each draw
    is reflected by a random :math:`g_i \in S`; the flow's density is evaluated at all images
    :math:`g\, y_i`, one of which is :math:`x_i` itself, so both estimates use the same evaluations.
    The standard error is the delta method on the pair of weights of each draw.

    Example:
        >>> from maxent_mdn import Expectation
        >>> even = MaxEntProblem(1, [Expectation(lambda x: x[..., 0] ** 2, 1.0)])
        >>> half = lambda y: torch.where(y[:, 0] > 0, -0.5 * y[:, 0] ** 2 + math.log(2 / math.sqrt(2 * math.pi)), -math.inf)
        >>> x = torch.randn(4000, 1, dtype=torch.float64).abs()  # a flow with only the positive half
        >>> m, se = missing_mass(half, even, torch.tensor([-0.5]), x, find_reflections(even, x))
        >>> round(m, 6)  # log 2: the other half of Z
        0.693147
    """
    x = x.double()
    n, maps = x.shape[0], reflections.signs.shape[0]
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, maps, (n,), generator=gen)
    y = reflections.apply(x, reflections.signs[pick])
    with torch.no_grad():
        eta_t = problem.statistics(x).double() @ eta.double()  # T(y) = T(x)
        images = torch.stack(
            [log_prob(reflections.apply(y, s)).double() for s in reflections.signs], dim=1
        )  # (n, maps): log q(g y_i); column pick_i is log q(x_i)
    log_q = images.gather(1, pick.unsqueeze(1)).squeeze(1)
    log_q_s = torch.logsumexp(images, dim=1) - math.log(maps)
    w, w_s = eta_t - log_q, eta_t - log_q_s
    top = torch.maximum(w.max(), w_s.max())
    e, e_s = torch.exp(w - top), torch.exp(w_s - top)
    if not bool(e.mean() > 0) or not torch.isfinite(e_s).all():
        raise ValueError("the importance weights of the reflection check are not finite")
    m = float(e_s.mean().log() - e.mean().log())
    influence = e_s / e_s.mean() - e / e.mean()
    return m, float(influence.std() / math.sqrt(n))
