"""The numeric side of one tensor's check: directional derivatives of L = Σ_o ⟨y_o, δ_o⟩ by
finite differences, their rounding noise, and what to do where the first estimate is not good
enough to judge (kinks, near-kinks, ties, ill-conditioned layers).

First pass, per checked direction v (a unit coordinate, or a random unit vector): the central
difference D(h) = ⟨y(+h) − y(−h), δ⟩ / 2h from two forward calls. Where the one-sided slopes
agree and D(h) already matches the analytic value within EARLY·tol (judged with the modelled
noise below and the analytic scale, the stricter choices), that is the estimate: its truncation
error h²·L‴/6 cannot make a wrong gradient match, and most directions of a correct layer stop
here. Every other direction takes the fourth-order central difference
n = (4 D(h) − D(2h)) / 3 from two more calls (truncation error O(h⁴)). Its rounding noise r is
the larger of

- modelled: a few ulps of every output the step changed, times |δ|, over h;
- measured: the fourth difference Δ⁴ = y(2h) − 4y(h) + 6y(0) − 4y(−h) + y(−2h), which for a
  smooth function is h⁴·L⁗ plus the rounding of the five values: |⟨Δ⁴, δ⟩| / 9h is about the
  noise of n (rounding in the inputs, e.g. x ≈ 10⁴ with σ ≈ 1, shows here where the model of
  the outputs' ulps misses it).

A direction is *suspect* when its relative error is above the tolerance, when its one-sided
slopes (y(h) − y(0))/h and (y(0) − y(−h))/h or D(h) and D(2h) disagree (a kink within the
stencil), or when the measured noise is far above the modelled one (a kink or rounding in the
inputs inflates Δ⁴, and an error could hide behind it). Each suspect
direction is refined with Ridders' extrapolation: central differences at steps 16h, 8h, ...,
h/128 extrapolated in a Neville table, keeping the estimate whose error estimate is smallest
(the spread of neighbouring extrapolations, or the measured noise of that step if larger).
Then

- a real kink — the jump between the one-sided slopes, (L(t) − 2L(0) + L(−t)) / t, stays large
  at the smallest steps and does not shrink as t does — is left out (a near-kink, e.g. |x| at
  x = 3·10⁻⁴ or a tie broken by 10⁻⁵, goes away at small steps and is checked);
- at a kink of a coordinate whose value is shared by other elements of the tensor (a tie in a
  max), the direction that moves the whole tied group together is smooth and is checked instead:
  a max-pool that routes the gradient to every tied element fails there;
- an estimate that agrees with the analytic value within 3× its own error estimate but not
  within the tolerance is *unresolved*: neither a pass nor a failure, and said so; so is a
  direction along which no output changes even at the largest step while the analytic value
  predicts a change below the outputs' rounding (a saturated tanh's slope of 1e-14);
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
# A direction whose D(h) agrees with the analytic value within EARLY·tol stops at two points.
EARLY = 0.1
CONFIRMED = 8        # confirmed failures after which a tensor's other suspects are not refined
_RIDDERS_START = 16.0
_SUPPORT_STEP = 1000.0
_RIDDERS_SHRINK = 2.0
_RIDDERS_LEVELS = 12


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

    def set(self, t: float) -> float:
        """Move to x + t·v; returns the step actually taken. For a coordinate that is
        (x + t) − x as stored, not t: at x ≈ 10⁴ the two differ by 1e-8 of a 1e-4 step, which
        would pass for a gradient error."""
        if self.index is not None:
            self.arr[self.index] = self.original[self.index] + t
            return float(self.arr[self.index]) - float(self.original[self.index])
        self.arr[...] = self.original + t * self.vector
        return t

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
        self.weights = [np.abs(y * d) for y, d in zip(y0, dys)]     # |y0 · δ|, for the noise

    def outputs(self, direction: Direction, t: float) -> tuple:
        """(outputs at x + t·v, the step actually taken)."""
        step = direction.set(t)
        try:
            return self.run(), step
        finally:
            direction.reset()

    def slopes(self, direction: Direction, t: float) -> tuple:
        """(outputs at +t, outputs at −t, forward slope, backward slope) along v."""
        (yp, tp), (ym, tm) = self.outputs(direction, t), self.outputs(direction, -t)
        return yp, ym, self.dot(yp, self.y0) / tp, self.dot(self.y0, ym) / -tm

    def dot(self, a: list, b: list) -> float:
        return sum(float(np.sum((ya - yb) * d)) for ya, yb, d in zip(a, b, self.dys))

    def modelled_noise(self, a: list, b: list, also=None) -> float:
        """A few ulps of every output value that differs between a and b (or is marked in the
        masks ``also``), times |δ|."""
        if also is None:
            return self.ulp * sum(float(np.sum(w, where=ya != yb))
                                  for w, ya, yb in zip(self.weights, a, b))
        return self.ulp * sum(float(np.sum(w, where=(ya != yb) | m))
                              for w, ya, yb, m in zip(self.weights, a, b, also))

    def below_resolution(self, analytic: float, h: float) -> bool:
        """After :meth:`refine`: no output moved even at the largest step, and the change the
        analytic value predicts there is below the rounding of the outputs: nothing a finite
        difference in this dtype can show (a saturated tanh's 1e-14 slope next to outputs 1)."""
        if analytic == 0 or self.moved is None or any(np.any(m) for m in self.moved):
            return False
        rounding = self.ulp * sum(float(np.sum(np.abs(y * d))) for y, d in zip(self.y0, self.dys))
        return abs(analytic) * _RIDDERS_START * h <= rounding

    def support(self, direction: Direction, h: float) -> list:
        """Masks of the outputs that a large step (±1000 h) along v changes: the outputs that
        depend on this direction at all, including ones whose change at small steps is below
        their rounding (a probability next to 1 moved by a logit 1e-14 away). A forward that
        raises at such a step gives empty masks."""
        masks = [np.zeros(y.shape, dtype=bool) for y in self.y0]
        for t in (_SUPPORT_STEP * h, -_SUPPORT_STEP * h):
            try:
                ys, _ = self.outputs(direction, t)
            except Exception:        # noqa: BLE001 - the layer rejects the value: no support
                continue
            masks = [m | (y != y0) for m, y, y0 in zip(masks, ys, self.y0)]
        return masks

    def fourth_difference(self, y2, y1, y_1, y_2) -> float:
        """⟨Δ⁴, δ⟩ of five equally spaced points around y0, from differences of neighbours so
        that outputs the steps did not change contribute exactly 0."""
        return sum(float(np.sum(((a - b) - 3 * (b - c) + 3 * (c - e) - (e - f)) * d))
                   for a, b, c, e, f, d in zip(y2, y1, self.y0, y_1, y_2, self.dys))

    def first_pass(self, direction: Direction, h: float, accept=None) -> tuple:
        """(n, noise, (forward slope, backward slope, D(h), D(2h), modelled noise, measured
        noise)) from the four-point stencil at h; or, when ``accept(D(h), its modelled noise,
        forward slope, backward slope)`` is true after the first two points, (D(h), that noise,
        None): two forward calls instead of four."""
        yp, ym, up, down = self.slopes(direction, h)
        if accept is not None:
            d1, noise = (up + down) / 2, self.modelled_noise(yp, ym) / h
            if accept(d1, noise, up, down):
                return d1, noise, None
        yp2, ym2, up2, down2 = self.slopes(direction, 2 * h)
        d1, d2 = (up + down) / 2, (up2 + down2) / 2
        fourth = self.fourth_difference(yp2, yp, ym, ym2)
        modelled, measured = self.modelled_noise(yp2, ym2) / h, abs(fourth) / (9 * h)
        return (4 * d1 - d2) / 3, max(modelled, measured), (up, down, d1, d2, modelled, measured)

    def refine(self, direction: Direction, h: float) -> tuple:
        """Ridders' extrapolation from 16h down to h/128: (estimate, error estimate, jumps)
        where jumps are (|one-sided slope difference|, larger |one-sided slope|, modelled noise,
        noise) at each step, largest step first. Every level is run (no early exit: the first steps may
        straddle a near-kink that the later ones resolve).

        The noise of the central difference at step t is the larger of the modelled one (a few
        ulps of every output that depends on the direction, see :meth:`support`) and a measured one: steps t and 2t give five equally
        spaced points, whose fourth difference ⟨Δ⁴, δ⟩ is the rounding of L times √70 plus a
        truncation term that only makes the estimate safer; the largest of three neighbouring
        levels is used, so one lucky small sample cannot pass for a quiet level."""
        t = _RIDDERS_START * h
        self.moved = None
        steps, centres, jumps, rounding, previous = [], [], [], [], None
        for level in range(_RIDDERS_LEVELS):
            yp, ym, up, down = self.slopes(direction, t)
            if self.moved is None:
                self.moved = [(a != c) | (b != c) | m for a, b, c, m in
                              zip(yp, ym, self.y0, self.support(direction, h))]
            if previous is not None:
                fourth = self.fourth_difference(previous[0], yp, ym, previous[1])
                rounding.append(abs(fourth) / np.sqrt(70.0))
            previous = (yp, ym)
            steps.append(t)
            centres.append((up + down) / 2)
            jumps.append([abs(up - down), max(abs(up), abs(down)),
                          self.modelled_noise(yp, ym, self.moved) / t])
            t /= _RIDDERS_SHRINK
        rounding = [rounding[0]] + rounding           # level 0 borrows level 1's sample
        for k, jump in enumerate(jumps):
            sigma = max(rounding[max(k - 1, 0):k + 2])
            jump.append(max(jump[2], sigma / steps[k]))
        best, err, row_above = float("nan"), float("inf"), []
        fac0 = _RIDDERS_SHRINK ** 2
        for level, centre in enumerate(centres):
            noise = jumps[level][3]
            row, fac = [centre], fac0
            for j in range(1, level + 1):
                row.append((row[j - 1] * fac - row_above[j - 1]) / (fac - 1))
                fac *= fac0
                e = max(abs(row[j] - row[j - 1]), abs(row[j] - row_above[j - 1]), noise)
                if e <= err:
                    err, best = e, row[j]
            row_above = row
        return best, err, [tuple(j) for j in jumps]


def is_real_kink(jumps: list, scale: float) -> bool:
    """A kink that stays: the jump between one-sided slopes is above KINK of the slopes (and of
    the tensor's scale S) and well above the modelled noise (a kink inflates the measured
    one) at each of the three smallest steps, and does
    not shrink (a smooth function's jump falls with the step, a near-kink's vanishes)."""
    last = jumps[-3:]
    if len(last) < 3:
        return False
    big = all(j > KINK * max(s, scale) and j > 10 * r for j, s, r, _ in last)
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
    indices = [()] * len(coords) if arr.ndim == 0 else \
        list(zip(*(axis.tolist() for axis in np.unravel_index(coords, arr.shape))))
    for idx in indices:
        checks.append((str(idx), idx, Direction(arr, original, index=idx),
                       float(analytic[idx])))
    for d in range(n_dirs):
        v = rng.standard_normal(arr.shape)
        v /= np.linalg.norm(v)
        checks.append((f"dir {d}", None, Direction(arr, original, vector=v),
                       float(np.sum(analytic * v))))
    a = np.array([c[3] for c in checks])
    limit = NOISE_REL * DEFAULTS[np.dtype(arr.dtype)][1]
    scale_a = float(np.max(np.abs(a), initial=0.0))
    first = [evaluator.first_pass(direction, h, _early_accept(ak, scale_a, tol, limit))
             for _, _, direction, ak in checks]
    n = np.array([f[0] for f in first])
    noise = np.array([f[1] for f in first])
    scale = float(max(scale_a, np.max(np.abs(n), initial=0.0)))
    rel = relative_error(a, n, noise, scale, limit)
    suspect = (rel >= tol) | np.array([f[2] is not None and _unsure(*f[2], scale)
                                       for f in first])
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


def _early_accept(analytic: float, scale: float, tol: float, limit: float):
    """The test that lets a direction stop after the two points at ±h: the one-sided slopes
    agree (no kink within the stencil) and the second-order D(h) already agrees with the
    analytic value within EARLY·tol, judged with the modelled noise only and the analytic
    scale only (both no larger than the full pass's, so this is the stricter test). D(h)'s
    truncation h²·L‴/6 is then below the tolerance too, or the two would not agree by chance;
    every other direction takes the fourth-order pass."""
    floor = max(FLOOR * scale, 1e-300)

    def accept(d1, noise, fwd, bwd) -> bool:        # relative_error on floats, for speed
        if abs(fwd - bwd) > KINK * max(abs(fwd), abs(bwd), scale):
            return False
        tiny = max(floor, noise / limit)
        return abs(analytic - d1) < EARLY * tol * max(abs(analytic), abs(d1), tiny)
    return accept


def _unsure(fwd, bwd, d1, d2, modelled, measured, scale: float) -> bool:
    """The first pass cannot be trusted: a kink within the stencil (one-sided slopes, or D(h)
    and D(2h), disagree), or a measured noise far above the modelled one (a kink, or rounding
    in the inputs, inflates it — and would hide an error behind it)."""
    return (abs(fwd - bwd) > KINK * max(abs(fwd), abs(bwd), scale)
            or abs(d1 - d2) > KINK * max(abs(d1), abs(d2), scale)
            or measured > 10 * max(modelled, 1e-300))


def _refined(evaluator, direction, h, analytic, tol, scale, limit) -> Estimate:
    best, err, jumps = evaluator.refine(direction, h)
    if is_real_kink(jumps, scale):
        return Estimate(best, err, kink=True, refined=True)
    if evaluator.below_resolution(analytic, h):
        return Estimate(best, err, unresolved=True, refined=True)
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
