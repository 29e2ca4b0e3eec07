"""The numeric side of one tensor's check: directional derivatives of L = Σ_o ⟨y_o, δ_o⟩ by
finite differences, their rounding noise, and what to do where the first estimate is not good
enough to judge (kinks, near-kinks, ties, ill-conditioned layers).

First pass, per checked direction v (a unit coordinate, or a random unit vector): the
fourth-order central difference n = (4 D(h) − D(2h)) / 3 with D(t) = ⟨y(+t) − y(−t), δ⟩ / 2t,
from four forward calls. Its rounding noise r is the larger of

- modelled: a few ulps of every output the step changed, times |δ|, over h;
- measured: the fourth difference Δ⁴ = y(2h) − 4y(h) + 6y(0) − 4y(−h) + y(−2h), which for a
  smooth function is h⁴·L'''' (negligible) plus the rounding of the five values: |⟨Δ⁴, δ⟩| / 9h
  is the same size as the noise of n (rounding in the inputs, e.g. x ≈ 10⁴ with σ ≈ 1, shows
  here where the model of the outputs' ulps misses it).

A direction is *suspect* when its relative error is above the tolerance, or its one-sided slopes
or D(h) and D(2h) disagree (a kink within the stencil). Each suspect direction is refined with
Ridders' extrapolation: central differences at steps 16h, 8h, ..., h/128 extrapolated in a
Neville table, keeping the estimate whose error estimate is smallest. Then

- a real kink — the jump between the one-sided slopes, (L(t) − 2L(0) + L(−t)) / t, stays large
  at the smallest steps and does not shrink as t does — is left out (a near-kink, e.g. |x| at
  x = 3·10⁻⁴ or a tie broken by 10⁻⁵, goes away at small steps and is checked);
- at a kink of a coordinate whose value is shared by other elements of the tensor (a tie in a
  max), the direction that moves the whole tied group together is smooth and is checked instead:
  a max-pool that routes the gradient to every tied element fails there;
- an estimate that agrees with the analytic value within 3× its own error estimate but not
  within the tolerance is *unresolved*: neither a pass nor a failure, and said so;
- otherwise the refined estimate replaces the first one.

After a fixed number of confirmed failures in one tensor the rest is not refined: the tensor
fails anyway, and a broken layer costs little more than a correct one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINK = 1e-2          # relative disagreement of one-sided slopes that marks a kink
FLOOR = 1e-4         # tiny = FLOOR · S
NOISE_ULPS = 8       # rounding of one output value, in ulps of its dtype, with margin
# A difference within the rounding noise counts as an error of at most this fraction of the
# dtype's default tolerance (1e-8 in float64, 1e-4 in float32): 10× the noise fails by default.
NOISE_REL = 0.1
# (step, tolerance) per dtype. float32: rounding of an output is ~6e-8·|y|, so the step is 1e-2
# (truncation of the 4th-order scheme ~1e-8) and agreement to 1e-3 is what float32 can show.
DEFAULTS = {np.dtype(np.float64): (1e-4, 1e-7), np.dtype(np.float32): (1e-2, 1e-3)}
CONFIRMED = 8        # confirmed failures after which a tensor's other suspects are not refined
_RIDDERS_START = 16.0
_RIDDERS_SHRINK = 2.0
_RIDDERS_LEVELS = 12
_MEASURED = 9.0      # |⟨Δ⁴, δ⟩| / (9h) ≈ noise of n


@dataclass
class Estimate:
    """The numeric derivative along one direction, and what is known about it."""

    numeric: float
    noise: float          # rounding noise of ``numeric``
    kink: bool = False
    unresolved: bool = False
    refined: bool = False


class Direction:
    """Moves one checked array along a direction v in place and puts it back: a coordinate
    touches one element, a dense direction the whole array."""

    def __init__(self, arr: np.ndarray, original: np.ndarray, index=None, vector=None):
        self.arr, self.original, self.index, self.vector = arr, original, index, vector

    def set(self, t: float) -> None:
        if self.index is not None:
            self.arr[self.index] = self.original[self.index] + t
        else:
            self.arr[...] = self.original + t * self.vector

    def reset(self) -> None:
        if self.index is not None:
            self.arr[self.index] = self.original[self.index]
        else:
            self.arr[...] = self.original


class Evaluator:
    """Directional differences of L for one tensor: ``outputs(direction, t)`` runs forward at
    x + t·v; differences are taken output by output before the dot product with δ, so outputs
    the step did not change cancel exactly."""

    def __init__(self, run, dys, y0, dtype):
        self.run, self.dys, self.y0 = run, dys, y0
        self.ulp = NOISE_ULPS * float(np.finfo(dtype).eps)

    def outputs(self, direction: Direction, t: float) -> list:
        direction.set(t)
        try:
            return self.run()
        finally:
            direction.reset()

    def dot(self, a: list, b: list) -> float:
        return sum(float(np.sum((ya - yb) * d)) for ya, yb, d in zip(a, b, self.dys))

    def modelled_noise(self, a: list, b: list, also=None) -> float:
        """A few ulps of every output value that differs between a and b (or is marked in the
        masks ``also``), times |δ|."""
        also = also or [False] * len(a)
        return self.ulp * sum(float(np.sum(np.abs(y * d)[(ya != yb) | m]))
                              for y, ya, yb, d, m in zip(self.y0, a, b, self.dys, also))

    def first_pass(self, direction: Direction, h: float) -> tuple:
        """(n, noise, suspect-of-kink) from the four-point stencil at h."""
        ys = {t: self.outputs(direction, t) for t in (h, -h, 2 * h, -2 * h)}
        d1 = self.dot(ys[h], ys[-h]) / (2 * h)
        d2 = self.dot(ys[2 * h], ys[-2 * h]) / (4 * h)
        fwd, bwd = self.dot(ys[h], self.y0) / h, self.dot(self.y0, ys[-h]) / h
        fourth = sum(float(np.sum((a - 4 * b + 6 * c - 4 * e + f) * d)) for a, b, c, e, f, d in
                     zip(ys[2 * h], ys[h], self.y0, ys[-h], ys[-2 * h], self.dys))
        noise = max(self.modelled_noise(ys[2 * h], ys[-2 * h]) / h,
                    abs(fourth) / (_MEASURED * h))
        n = (4 * d1 - d2) / 3
        return n, noise, (fwd, bwd, d1, d2)

    def refine(self, direction: Direction, h: float) -> tuple:
        """Ridders' extrapolation from 16h down to h/128: (estimate, error estimate, jumps)
        where jumps are (|one-sided slope difference|, larger |one-sided slope|, modelled
        noise) at each step, largest step first. Every level is run (no early exit: the first
        steps may straddle a near-kink that the later ones resolve). The noise at each step
        counts every output that the largest step changed: an output whose change a small step
        rounds away (a probability next to 1 that moves by 1e-16) still depends on x."""
        t = _RIDDERS_START * h
        previous, best, err, jumps, moved = [], float("nan"), float("inf"), [], None
        fac0 = _RIDDERS_SHRINK ** 2
        for level in range(_RIDDERS_LEVELS):
            yp, ym = self.outputs(direction, t), self.outputs(direction, -t)
            if moved is None:
                moved = [(a != c) | (b != c) for a, b, c in zip(yp, ym, self.y0)]
            up, down = self.dot(yp, self.y0) / t, self.dot(self.y0, ym) / t
            noise = self.modelled_noise(yp, ym, moved) / t
            jumps.append((abs(up - down), max(abs(up), abs(down)), noise))
            row = [(up + down) / 2]
            fac = fac0
            for j in range(1, level + 1):
                row.append((row[j - 1] * fac - previous[j - 1]) / (fac - 1))
                fac *= fac0
                e = max(abs(row[j] - row[j - 1]), abs(row[j] - previous[j - 1]), noise)
                if e <= err:
                    err, best = e, row[j]
            previous = row
            t /= _RIDDERS_SHRINK
        return best, err, jumps


def is_real_kink(jumps: list, scale: float) -> bool:
    """A kink that stays: the jump between one-sided slopes is above KINK of the slopes (and of
    the tensor's scale S) and well above the noise at each of the three smallest steps, and does
    not shrink (a smooth function's jump falls with the step, a near-kink's vanishes)."""
    last = jumps[-3:]
    if len(last) < 3:
        return False
    big = all(j > KINK * max(s, scale) and j > 10 * r for j, s, r in last)
    return big and last[-1][0] > 0.5 * last[0][0]


def tie_group(arr: np.ndarray, index: tuple) -> np.ndarray | None:
    """The unit direction moving every element equal to arr[index] together, or None when the
    value is not shared."""
    c = arr[index]
    group = arr == c
    k = int(group.sum())
    if k < 2:
        return None
    return group.astype(np.float64) / np.sqrt(k)


def check_elements(arr, analytic, evaluator: Evaluator, h: float, tol: float, rng,
                   max_coords: int, n_directions: int) -> dict:
    """Check one tensor's gradient ``analytic`` against finite differences of L along its
    coordinates (all of them, or ``max_coords`` sampled plus ``n_directions`` random
    directions) and, at real kinks shared by tied elements, along the tie groups. Returns the
    plain results for :class:`~layerkit.check.report.TensorCheck`: ``elements`` (index label,
    analytic, numeric, rel_error (None at a kink or unresolved), kink, unresolved, coord),
    ``n_coords``, ``n_directions``."""
    original = arr.copy()
    if arr.size <= max_coords:
        coords, n_dirs = np.arange(arr.size), 0
    else:
        coords = np.sort(rng.choice(arr.size, size=max_coords, replace=False))
        n_dirs = n_directions
    checks = []          # (label, coord index or None, direction, analytic value)
    for c in coords:
        idx = tuple(int(i) for i in np.unravel_index(c, arr.shape))
        checks.append((str(idx), idx, Direction(arr, original, index=idx),
                       float(analytic[idx])))
    for d in range(n_dirs):
        v = rng.standard_normal(arr.shape)
        v /= np.linalg.norm(v)
        checks.append((f"dir {d}", None, Direction(arr, original, vector=v),
                       float(np.sum(analytic * v))))
    first = [evaluator.first_pass(direction, h) for _, _, direction, _ in checks]
    a = np.array([c[3] for c in checks])
    n = np.array([f[0] for f in first])
    noise = np.array([f[1] for f in first])
    scale = float(max(np.max(np.abs(a), initial=0.0), np.max(np.abs(n), initial=0.0)))
    limit = NOISE_REL * DEFAULTS[np.dtype(arr.dtype)][1]
    rel = relative_error(a, n, noise, scale, limit)
    suspect = (rel >= tol) | np.array([_kink_in_stencil(*f[2], scale) for f in first])
    estimates = [Estimate(float(ni), float(ri)) for ni, ri in zip(n, noise)]
    confirmed = 0
    for k in np.argsort(-np.where(suspect, rel, -1.0)):
        if not suspect[k] or confirmed >= CONFIRMED:
            break
        label, idx, direction, ak = checks[k]
        estimates[k] = _refined(evaluator, direction, h, ak, tol, scale, limit)
        if estimates[k].kink and idx is not None:
            extra = _tie_check(arr, original, idx, analytic, evaluator, h, tol, scale, limit)
            if extra is not None:
                checks.append((f"tie at {idx} ({extra[1]} elements)", None, None, extra[0]))
                estimates.append(extra[2])
        if not (estimates[k].kink or estimates[k].unresolved):
            confirmed += relative_error(np.array([ak]), np.array([estimates[k].numeric]),
                                   np.array([estimates[k].noise]), scale, limit)[0] >= tol
    arr[...] = original
    a = np.array([c[3] for c in checks])
    n = np.array([e.numeric for e in estimates])
    rel = relative_error(a, n, np.array([e.noise for e in estimates]), scale, limit)
    elements = []
    for (label, idx, _, ai), ni, ri, e in zip(checks, n, rel, estimates):
        skip = e.kink or e.unresolved
        elements.append({"index": label, "analytic": float(ai), "numeric": float(ni),
                         "rel_error": None if skip else float(ri), "kink": bool(e.kink),
                         "unresolved": bool(e.unresolved), "coord": idx, "noise": e.noise})
    return {"elements": elements, "n_coords": len(coords), "n_directions": n_dirs}


def relative_error(a, n, noise, scale: float, limit: float):
    """|a − n| / max(|a|, |n|, tiny), tiny = max(FLOOR·S, noise / limit): a difference within
    the rounding noise counts as an error of at most ``limit``."""
    tiny = np.maximum(max(FLOOR * scale, 1e-300), noise / limit)
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), tiny)


def _kink_in_stencil(fwd, bwd, d1, d2, scale: float) -> bool:
    return (abs(fwd - bwd) > KINK * max(abs(fwd), abs(bwd), scale)
            or abs(d1 - d2) > KINK * max(abs(d1), abs(d2), scale))


def _refined(evaluator, direction, h, analytic, tol, scale, limit) -> Estimate:
    best, err, jumps = evaluator.refine(direction, h)
    if is_real_kink(jumps, scale):
        return Estimate(best, err, kink=True, refined=True)
    rel = relative_error(np.array([analytic]), np.array([best]), np.array([err]), scale, limit)[0]
    unresolved = bool(rel >= tol and abs(analytic - best) <= 3 * err)
    return Estimate(best, err, unresolved=unresolved, refined=True)


def _tie_check(arr, original, idx, analytic, evaluator, h, tol, scale, limit):
    """At a kink where other elements share the value: (analytic along the tie group, group
    size, estimate) for the direction moving the whole group, or None."""
    v = tie_group(original, idx)
    if v is None:
        return None
    estimate = _refined(evaluator, Direction(arr, original, vector=v), h,
                        float(np.sum(analytic * v)), tol, scale, limit)
    if estimate.kink:
        return None
    return float(np.sum(analytic * v)), int(np.count_nonzero(v)), estimate
