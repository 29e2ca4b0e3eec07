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
- **borders only**: on an (N, C, *spatial) array, every wrong element lies closer to an edge
  than every right one (padding or the window range at the edge).
- **some time steps**: on an (N, T, D) array, the wrong elements occupy time steps no right
  element does (backpropagation through time stopping early, or a missing dh from step t+1).
- **some positions along an axis**: the same separation along any other axis.

A fit counts when it explains a to a relative residual below ``FIT`` (10⁻³): these are exact
mistakes, so a true pattern fits to rounding error, and a wrong one misses by far more.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

FIT = 1e-3


def _norm(v) -> float:
    return float(np.linalg.norm(v))


def _fits(candidate, numeric) -> bool:
    scale = max(_norm(candidate), _norm(numeric))
    return scale > 0 and _norm(candidate - numeric) <= FIT * scale


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


def diagnose(check, analytic: np.ndarray, tol: float) -> tuple[str | None, str]:
    """(pattern name or None, one plain-words sentence) for a failing TensorCheck.

    ``analytic`` is the whole analytic gradient (the check holds only the checked elements).
    """
    name = check.name
    els = [e for e in check.elements if not e["kink"]]
    if not els:
        return None, ""
    a = np.array([e["analytic"] for e in els])
    n = np.array([e["numeric"] for e in els])
    what = f"grads[{name!r}]" if not (name == "x" or name.startswith("inputs[")) \
        else f"the gradient of {name} returned by backward"

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
    if _fits(a, k * n) and abs(k - 1) > tol:
        if abs(k + 1) <= FIT:
            return "sign flipped", (
                f"{what} is the negative of the numeric gradient (analytic = -1 × numeric at "
                "every checked element): a sign error, e.g. a subtraction written the wrong way "
                "round or a gradient-descent step folded into backward")
        return f"scaled by {describe_factor(k)}", (
            f"{what} is the numeric gradient times a constant k = {describe_factor(k)} at every "
            "checked element: a missing or extra constant factor (the 1/N of a mean, the 2 of a "
            "square, a term counted twice)")

    coords = [(e["coord"], e["numeric"]) for e in els if e["coord"] is not None]
    if coords:
        idx = tuple(np.array([c for c, _ in coords]).T)
        n_c = np.array([v for _, v in coords])
        if analytic.ndim >= 2 and analytic.shape[-1] == analytic.shape[-2]:
            swapped = np.swapaxes(analytic, -1, -2)
            if not np.allclose(swapped, analytic) and _fits(swapped[idx], n_c):
                return "transposed", (
                    f"{what} matches the numeric gradient with its last two axes swapped: the "
                    "gradient is transposed (e.g. x.T @ dy where dy.T @ x is needed)")
        if analytic.ndim >= 3:
            flipped = np.flip(analytic, axis=tuple(range(2, analytic.ndim)))
            if not np.allclose(flipped, analytic) and _fits(flipped[idx], n_c):
                return "flipped kernel", (
                    f"{what} matches the numeric gradient flipped along its spatial axes (rotated "
                    "by 180°): a convolution was used where the derivation has a "
                    "cross-correlation, or the other way round")

    return _localized(check, els, tol, what)


def _localized(check, els, tol, what) -> tuple[str | None, str]:
    """Patterns where some elements are right and the wrong ones share a position."""
    pos = [e for e in els if e["coord"] is not None]
    bad = np.array([e["rel_error"] >= tol for e in pos], dtype=bool)
    shape = check.shape
    worst = max(els, key=lambda e: e["rel_error"])
    fallback = (None, f"{what} differs from the numeric gradient with no simple pattern "
                      f"(largest relative error {worst['rel_error']:.3g} at {worst['index']}); "
                      "compare the worst elements below with the derivation")
    if not bad.any() or bad.all():
        return fallback
    coords = np.array([e["coord"] for e in pos])

    if len(shape) >= 3 and min(shape[2:]) >= 3:
        spatial = coords[:, 2:]
        dist = np.min(np.minimum(spatial, np.array(shape[2:]) - 1 - spatial), axis=1)
        if dist[bad].max() < dist[~bad].min():
            w = int(dist[bad].max()) + 1
            return "borders only", (
                f"{what} is wrong only within {w} element(s) of the border of the spatial axes "
                f"and right further inside: check the padding, or where the window range is cut "
                "at the edges")

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
