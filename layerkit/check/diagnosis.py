"""Name what is wrong with a gradient that failed its finite-difference check.

A failing tensor's checked elements give analytic values a and numeric values n (coordinates,
plus random directions for large tensors). The patterns, tried in this order:

- **all zeros**: a = 0 everywhere while n is not (the gradient is never written).
- **numeric zero**: n = 0 while a is not (forward does not depend on that array: a copy is used).
- **sign flipped**: a ≈ −n.
- **scaled by k**: a ≈ k·n for one constant k, fitted by least squares k = ⟨a, n⟩ / ⟨n, n⟩
  (a missing 1/N of a mean, a doubled term, the 2 of a square).
- **transposed**: the analytic array with its last two axes swapped matches n.
- **flipped kernel**: the analytic array flipped along its spatial axes (2, 3, ...) matches n,
  i.e. a convolution where the derivation needs a cross-correlation (or the other way round).
- **inverted mask**: a is nonzero exactly where n is zero and the other way round (a mask such
  as x > 0 written x <= 0).
- **borders only**: on an (N, C, *spatial) array, every wrong element lies closer to an edge
  than every right one (padding or the window range at the edge), or closer to one side of one
  spatial axis (the last row or column of windows left out).
- **scaled by k where wrong**: some elements right, every other one exactly k × numeric (a
  slope wrong on one branch).
- **offset by a constant** / **offset along axis k**: analytic − numeric is one constant, or the
  same for every index of one axis (a mean term of a normalization left out, a −1/N).
- **one element**: a single checked element is wrong, the others right.
- **one element per row**: exactly one wrong element in every row, all by the same amount (a
  one-hot term such as the −1 at the true class).
- **some time steps**: on an (N, T, D) array, the wrong elements occupy time steps no right
  element does (backpropagation through time stopping early, or a missing dh from step t+1).
- **some positions along an axis**: the same separation along any other axis.

A fit counts only when it explains the failure at the checker's own tolerance: the candidate
must agree with n element by element as the analytic gradient was required to (the same
relative error, noise floor included), so one element in 500 off by 0.1 % is not "scaled by 1".
Localised patterns count only elements that carry information: an element where both a and n
are zero is right trivially (an embedding row no id selected) and does not separate positions.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .numeric import DEFAULTS, NOISE_REL, relative_error


def _norm(v) -> float:
    return float(np.linalg.norm(v))


class _Fit:
    """Does a candidate gradient explain the numeric one at the check's tolerance?"""

    def __init__(self, numeric, noise, tol: float, dtype):
        self.numeric, self.noise, self.tol = numeric, noise, tol
        self.limit = NOISE_REL * DEFAULTS[np.dtype(dtype)][1]

    def __call__(self, candidate, numeric=None, noise=None) -> bool:
        n = self.numeric if numeric is None else numeric
        r = self.noise if noise is None else noise
        scale = float(max(np.max(np.abs(candidate), initial=0.0), np.max(np.abs(n), initial=0.0)))
        if scale == 0:
            return False
        return bool(np.all(relative_error(candidate, n, r, scale, self.limit) < self.tol))


def describe_factor(k: float) -> str:
    """k as a short exact fraction when it is one (0.25 -> '1/4', -2.0 -> '-2'), else '%.4g'."""
    f = Fraction(k).limit_denominator(256)
    if abs(float(f) - k) <= 1e-9 * abs(k) and abs(f.numerator) <= 4096:
        return str(f)
    return f"{k:.4g}"


def _ranges(values) -> str:
    """Sorted integers as compact ranges: [0, 1, 2, 5] -> '0..2, 5'."""
    values = sorted(set(values))
    parts, start = [], values[0]
    for prev, cur in zip(values, values[1:] + [None]):
        if cur != prev + 1 if cur is not None else True:
            parts.append(str(start) if start == prev else f"{start}..{prev}")
            start = cur
    return ", ".join(parts)


def diagnose(check, analytic: np.ndarray, tol: float, *,
             is_param: bool | None = None) -> tuple[str | None, str]:
    """(pattern name or None, one plain-words sentence) for a failing TensorCheck.

    ``analytic`` is the whole analytic gradient (the check holds only the checked elements);
    ``is_param`` says whether the tensor is a parameter (``grads[name]``) or an input (the
    gradient backward returns); None guesses from the name (``x``, ``inputs[i]``).
    """
    name = check.name
    els = [e for e in check.elements if e["rel_error"] is not None]
    if not els:
        return None, ""
    a = np.array([e["analytic"] for e in els])
    n = np.array([e["numeric"] for e in els])
    noise = np.array([e.get("noise", 0.0) for e in els])
    fits = _Fit(n, noise, tol, analytic.dtype if analytic.dtype != object else np.float64)
    if is_param is None:
        is_param = not (name == "x" or name.startswith("inputs["))
    what = f"grads[{name!r}]" if is_param else f"the gradient of {name} returned by backward"

    if _norm(a) <= 1e-12 * _norm(n):
        return "all zeros", (
            f"{what} is zero at every checked element, but the numeric gradient is not "
            f"(up to {np.max(np.abs(n)):.3g}): the gradient is never computed or never written "
            "(accumulate into the array with +=, do not rebind it)")
    if _norm(n) <= 1e-12 * _norm(a):
        return "numeric zero", (
            f"changing {name} does not change forward's output (numeric gradient 0), yet "
            f"{what} is not zero: forward uses a different array than the one checked "
            "(a copy, or an attribute rebound after params was built)")

    k = float(np.dot(a, n) / np.dot(n, n))
    if fits(a, k * n) and abs(k - 1) > tol:
        if abs(k + 1) <= tol:
            return "sign flipped", (
                f"{what} is the negative of the numeric gradient (analytic = -1 × numeric at "
                "every checked element): a sign error, e.g. a subtraction written the wrong way "
                "round or a gradient-descent step folded into backward")
        return f"scaled by {describe_factor(k)}", (
            f"{what} is the numeric gradient times a constant k = {describe_factor(k)} at every "
            "checked element: a missing or extra constant factor (the 1/N of a mean, the 2 of a "
            "square, a term counted twice)")

    small = 1e-3 * max(float(np.max(np.abs(n))), float(np.max(np.abs(a))))
    on_a, on_n = np.abs(a) > small, np.abs(n) > small
    if on_a.any() and on_n.any() and not np.any(on_a & on_n) and np.all(on_a | on_n):
        return "inverted mask", (
            f"{what} is nonzero exactly where the numeric gradient is zero, and zero where it is "
            "not: the mask is inverted (e.g. x > 0 written x <= 0, or the kept and dropped "
            "units of a dropout mask swapped)")

    coords = [(e["coord"], e["numeric"], e.get("noise", 0.0)) for e in els
              if e["coord"] is not None]
    if coords:
        idx = tuple(np.array([c for c, _, _ in coords]).T)
        n_c = np.array([v for _, v, _ in coords])
        r_c = np.array([r for _, _, r in coords])
        if analytic.ndim >= 2 and analytic.shape[-1] == analytic.shape[-2]:
            swapped = np.swapaxes(analytic, -1, -2)
            if not np.allclose(swapped, analytic) and fits(swapped[idx], n_c, r_c):
                return "transposed", (
                    f"{what} matches the numeric gradient with its last two axes swapped: the "
                    "gradient is transposed (e.g. x.T @ dy where dy.T @ x is needed)")
        if analytic.ndim >= 3:
            flipped = np.flip(analytic, axis=tuple(range(2, analytic.ndim)))
            if not np.allclose(flipped, analytic) and fits(flipped[idx], n_c, r_c):
                return "flipped kernel", (
                    f"{what} matches the numeric gradient flipped along its spatial axes (rotated "
                    "by 180°): a convolution was used where the derivation has a "
                    "cross-correlation, or the other way round")

    pattern, sentence = _localized(check, els, tol, what)
    if pattern is not None:
        return pattern, sentence
    return (_partly_scaled(els, tol, what) or _one_hot(els, tol, what)
            or _offset(els, check.shape, tol, what) or (pattern, sentence))


def _partly_scaled(els, tol, what):
    """"scaled by k where wrong": every wrong element is k times its numeric value for one k,
    and the others are right (a slope wrong on one branch, a factor missing on some units)."""
    bad = [e for e in els if e["rel_error"] >= tol and e["numeric"] != 0]
    good = [e for e in els if e["rel_error"] < tol and e["numeric"] != 0]
    if len(bad) < 2 or len(good) < 2 or len(bad) < sum(e["rel_error"] >= tol for e in els):
        return None
    ratios = np.array([e["analytic"] / e["numeric"] for e in bad])
    k = float(np.median(ratios))
    if not np.all(np.abs(ratios - k) <= tol * max(abs(k), 1.0)) or abs(k - 1) <= tol or k == 0:
        return None
    where = ", ".join(e["index"] for e in bad[:3]) + (", ..." if len(bad) > 3 else "")
    return f"scaled by {describe_factor(k)} where wrong", (
        f"{what} is right at some elements and exactly {describe_factor(k)} × the numeric "
        f"gradient at the others ({where}): one branch or group of units has the wrong factor "
        "(a leaky slope, a derivative on one side of a kink, a scale applied to a subset)")


def _one_hot(els, tol, what):
    """"one element per row": in every row (index of axis 0) exactly one checked element is
    wrong, all by the same amount: a one-hot term (the −1 at the true class) is missing or
    extra."""
    pos = [e for e in els if e["coord"] is not None]
    bad = [e for e in pos if e["rel_error"] >= tol]
    rows = {e["coord"][0] for e in pos}
    if len(bad) < 2 or len({e["coord"][0] for e in bad}) != len(bad) or \
            {e["coord"][0] for e in bad} != rows:
        return None
    d = np.array([e["analytic"] - e["numeric"] for e in bad])
    if np.max(np.abs(d - d[0])) > tol * np.max(np.abs(d)):
        return None
    return "one element per row", (
        f"{what} is wrong at exactly one element of every row, by the same amount {d[0]:.4g} "
        "each time: a one-hot term is missing or extra (the −1 at the true class of a softmax "
        "cross-entropy, an indicator of the label)")


def _offset(els, shape, tol, what):
    """"offset": analytic − numeric is the same constant everywhere, or constant along one
    axis (the same for every index of that axis): a term that does not depend on that index
    (a mean over the batch, a −1/N) is missing or extra."""
    pos = [e for e in els if e["coord"] is not None]
    if len(pos) < 4:
        return None
    d = np.array([e["analytic"] - e["numeric"] for e in pos])
    size = max(float(np.max(np.abs([e["numeric"] for e in pos]))), 1e-300)
    if np.max(np.abs(d)) <= tol * size:
        return None
    same = lambda v: np.max(np.abs(v - v[0])) <= tol * max(np.max(np.abs(v)), size * 1e-3)
    if same(d):
        return "offset by a constant", (
            f"{what} differs from the numeric gradient by the same constant {d[0]:.4g} at every "
            "checked element: an extra or missing term that depends on nothing")
    coords = np.array([e["coord"] for e in pos])
    for ax in range(len(shape)):
        if shape[ax] < 2:
            continue
        groups = {}
        for c, v in zip(map(tuple, np.delete(coords, ax, axis=1)), d):
            groups.setdefault(c, []).append(v)
        multi = [np.array(v) for v in groups.values() if len(v) >= 2]
        if len(multi) >= 2 and all(same(v) for v in multi) and \
                not same(np.array([v[0] for v in multi])):
            return f"offset along axis {ax}", (
                f"{what} differs from the numeric gradient by an amount that is the same for "
                f"every index of axis {ax} (size {shape[ax]}) and changes along the other axes: "
                f"a term averaged or summed over axis {ax} is missing or extra (e.g. the mean "
                "term of a normalization, a −1/N of a mean)")
    return None


def _borders(coords, bad, shape, what):
    """"borders only": the wrong elements of an (N, C, *spatial) array are all nearer to the
    edge (any edge, or one side of one spatial axis) than every right one."""
    if len(shape) < 3 or min(shape[2:]) < 3:
        return None
    spatial, size = coords[:, 2:], np.array(shape[2:])
    dist = np.min(np.minimum(spatial, size - 1 - spatial), axis=1)
    if dist[bad].max() < dist[~bad].min():
        w = int(dist[bad].max()) + 1
        return "borders only", (
            f"{what} is wrong only within {w} element(s) of the border of the spatial axes "
            "and right further inside: check the padding, or where the window range is cut "
            "at the edges")
    for ax in range(spatial.shape[1]):
        for side, d in (("first", spatial[:, ax]), ("last", size[ax] - 1 - spatial[:, ax])):
            if d[bad].max() < d[~bad].min():
                w = int(d[bad].max()) + 1
                return "borders only", (
                    f"{what} is wrong only at the {side} {w} position(s) of spatial axis "
                    f"{ax + 2} (size {shape[ax + 2]}) and right elsewhere: the {side} row or "
                    "column of windows is left out or cut short (a range that stops one early, "
                    "or a stride that does not reach the edge)")
    return None


def _localized(check, els, tol, what) -> tuple[str | None, str]:
    """Patterns where some elements are right and the wrong ones share a position."""
    worst = max(els, key=lambda e: e["rel_error"])
    # elements right because a = n = 0 carry no information about where the error is
    pos = [e for e in els if e["coord"] is not None
           and (e["rel_error"] >= tol or e["analytic"] != 0 or e["numeric"] != 0)]
    bad = np.array([e["rel_error"] >= tol for e in pos], dtype=bool)
    shape = check.shape
    fallback = (None, f"{what} differs from the numeric gradient with no simple pattern "
                      f"(largest relative error {worst['rel_error']:.3g} at {worst['index']}); "
                      "compare the worst elements below with the derivation")
    if not bad.any() or (~bad).sum() < 2:
        return fallback
    if bad.sum() == 1 and (~bad).sum() >= 5:
        (one,) = [e for e, b in zip(pos, bad) if b]
        return "one element", (
            f"{what} is wrong at one element only, {one['index']} (analytic {one['analytic']:.6g}, "
            f"numeric {one['numeric']:.6g}), and right at the {int((~bad).sum())} others "
            "checked: an index computed wrongly, or a special case for one position")
    coords = np.array([e["coord"] for e in pos])
    border = _borders(coords, bad, shape, what)
    if border:
        return border

    axes = [1] + [ax for ax in range(len(shape)) if ax != 1] if len(shape) == 3 else \
        range(len(shape))
    for ax in axes:
        if shape[ax] < 2:
            continue
        wrong, right = set(coords[bad, ax].tolist()), set(coords[~bad, ax].tolist())
        if wrong & right:
            continue
        if len(shape) == 3 and ax == 1:
            t_max = max(wrong)
            hint = ("; every wrong step comes before every right one, so the gradient does not "
                    "flow back far enough: does backpropagation through time stop early, or "
                    "leave out the dh carried from step t+1?" if t_max < min(right) else "")
            return "some time steps", (
                f"{what} is wrong only at time steps t = {_ranges(wrong)} of T = {shape[1]} "
                f"(axis 1 of (N, T, D)) and right at t = {_ranges(right)}{hint}")
        return "some positions", (
            f"{what} is wrong only at positions {_ranges(wrong)} of axis {ax} (size {shape[ax]}), "
            f"right at {_ranges(right)}")
    return fallback
