"""Finite-difference gradient checking for anything that follows the Layer contract.

The checked scalar is L = Σ_o ⟨y_o, δ_o⟩ for the layer's outputs y_o and a random upstream
gradient δ_o, so the analytic gradients are exactly what ``backward(δ)`` returns (inputs) and
accumulates into ``grads`` (parameters) after ``zero_grad()``.

Numeric derivative of L along a direction v (a unit coordinate e_i, or a random unit vector for
large tensors) with the fourth-order central difference

    D(h) = Σ_o ⟨y_o(+h) − y_o(−h), δ_o⟩ / 2h,        n = (4 D(h) − D(2h)) / 3,

in float64 with h = 1e-4 by default: truncation error O(h⁴), rounding error ≈ 1e-16·|y|/h.
Differences are taken output by output before the dot product with δ, so unchanged outputs
cancel exactly.

Per element, relative error |a − n| / max(|a|, |n|, tiny) with tiny = max(1e-4 · S, r / 1e-8),
S the largest |a| or |n| of that tensor and r the rounding noise of that numeric estimate
(8 ulps of every output value the step changed, times |δ|, over h): an element whose gradient
is below 1e-4 of the tensor's scale is held to an absolute error of 1e-4·S·tol, and a
difference within the rounding noise counts as an error of at most 1e-8: nothing is asked to
agree more closely than floating point can tell (a tiny gradient reached through a saturated
tanh, next to outputs of size 1).

Initial states and other float arrays passed as keyword arguments of ``forward`` (``h0``, ``c0``
of a recurrent layer) are checked too: their analytic gradient is read from the attribute
``layer.d<name>`` after ``backward`` (``h0`` → ``layer.dh0``), the contract of stateful layers.
Integer arrays and other values in ``forward_kwargs`` (``lengths``, sizes) are passed through.

Kinks (ReLU at 0, ties in a max) are detected, not hidden: where the one-sided slopes
(y(h) − y(0))/h and (y(0) − y(−h))/h, or D(h) and D(2h), differ by more than 1 % of the slope
and of S, the coordinate is reported as a kink and left out of the error; a tensor whose checked
coordinates are all kinks has status ``kink``. A tensor whose gradients are all (numerically)
zero has status ``vacuous``: a check that cannot fail is not a pass.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

DEFAULT_EPS = 1e-4
DEFAULT_TOL = 1e-7
_FLOOR = 1e-4       # tiny = _FLOOR · S
_KINK = 1e-2        # relative disagreement of slopes that marks a kink
_VACUOUS = 1e-10    # S below this: nothing to check
_NOISE = 8 * np.finfo(np.float64).eps   # rounding of one output value, with margin
_NOISE_REL = 1e-8   # a difference within the rounding noise counts as at most this error


@dataclass
class TensorCheck:
    """Result of checking one gradient (an input or a parameter)."""

    name: str
    shape: tuple
    status: str                  # "pass", "fail", "vacuous" or "kink"
    max_rel_error: float
    worst: str                   # index of the worst element, or "dir k" for a direction
    analytic: float
    numeric: float
    n_coords: int
    n_directions: int
    n_kinks: int

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass
class GradcheckReport:
    """All checks of one layer: per-tensor results plus contract problems found on the way."""

    layer: str
    tol: float
    eps: float
    tensors: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and bool(self.tensors) and all(t.passed for t in self.tensors)

    @property
    def max_rel_error(self) -> float:
        errs = [t.max_rel_error for t in self.tensors if not math.isnan(t.max_rel_error)]
        return max(errs) if errs else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        for t in d["tensors"]:
            t["shape"] = list(t["shape"])
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        return format_table([(" ".join(self.layer.split()), "", self)])

    def __str__(self) -> str:
        return self.table()


def format_table(reports) -> str:
    """A text table of (layer name, configuration, report) triples, one row per checked tensor."""
    header = ("layer", "config", "tensor", "max rel err", "worst", "analytic", "numeric", "status")
    rows = []
    for layer, config, rep in reports:
        for p in rep.problems:
            rows.append((layer, config, "-", "-", "-", "-", "-", "FAIL: " + p))
        for t in rep.tensors:
            status = t.status.upper() if t.status != "pass" else "pass"
            if t.n_kinks and t.status != "kink":
                status += f" ({t.n_kinks} kinks skipped)"
            rows.append((layer, config, t.name, f"{t.max_rel_error:.2e}", t.worst,
                         f"{t.analytic:.6g}", f"{t.numeric:.6g}", status))
    if all(config == "" for _, config, _ in reports):      # a single report: no config column
        header, rows = header[:1] + header[2:], [r[:1] + r[2:] for r in rows]
    widths = [max(len(str(r[j])) for r in [header] + rows) for j in range(len(header))]
    fmt = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


# -- helpers ------------------------------------------------------------------------------------

def _as_tuple(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _generators(obj, seen=None) -> list:
    """Every numpy Generator held by a layer or its children (to freeze randomness)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found = []
    for v in vars(obj).values() if hasattr(obj, "__dict__") else ():
        if isinstance(v, np.random.Generator):
            found.append(v)
        elif hasattr(v, "forward") and hasattr(v, "backward"):
            found += _generators(v, seen)
        elif isinstance(v, (list, tuple)):
            for item in v:
                if hasattr(item, "forward") and hasattr(item, "backward"):
                    found += _generators(item, seen)
    return found


def check_contract(layer) -> None:
    """Raise TypeError saying what is missing if ``layer`` does not follow the Layer contract."""
    missing = [a for a in ("forward", "backward") if not callable(getattr(layer, a, None))]
    missing += [a for a in ("params", "grads") if not isinstance(getattr(layer, a, None), dict)]
    if missing:
        raise TypeError(
            f"{layer!r} does not follow the Layer contract: missing {', '.join(missing)}. A layer "
            "needs forward(x) -> y, backward(dy) -> dx, and dicts params and grads with the same "
            "keys and shapes (backward accumulates into grads)."
        )
    params, grads = layer.params, layer.grads
    if set(params) != set(grads):
        raise TypeError(f"{layer!r}: params and grads must have the same keys, got "
                        f"{sorted(params)} and {sorted(grads)}")
    for k in params:
        if np.shape(params[k]) != np.shape(grads[k]):
            raise TypeError(f"{layer!r}: grads[{k!r}] has shape {np.shape(grads[k])}, "
                            f"params[{k!r}] has {np.shape(params[k])}")


def _zero_grad(layer) -> None:
    if hasattr(layer, "zero_grad"):
        layer.zero_grad()
    else:
        for g in layer.grads.values():
            g[...] = 0


# -- the checker --------------------------------------------------------------------------------

def gradcheck(layer, inputs, *, eps: float = DEFAULT_EPS, tol: float = DEFAULT_TOL,
              seed: int = 0, max_coords: int = 64, n_directions: int = 4,
              forward_kwargs: dict | None = None) -> GradcheckReport:
    """Check a layer's ``backward`` against finite differences of its ``forward``.

    Parameters
    ----------
    layer : object with ``forward``, ``backward``, ``params`` and ``grads``
        Built-in or a user's own class. Parameters must be float64 (build the layer with
        ``dtype=np.float64`` or call ``layer.astype(np.float64)``).
    inputs : ndarray or tuple of ndarrays
        Arguments of ``forward``. Floating inputs are copied to float64 and checked; integer
        inputs (class ids, token ids) are passed as they are and not differentiated.
    eps : float
        Step h of the finite difference.
    tol : float
        A tensor passes when its largest relative error is below ``tol``.
    seed : int
        Seed for the upstream gradient and the sampled coordinates.
    max_coords : int
        Tensors with more elements are checked on this many random coordinates plus
        ``n_directions`` random-direction directional derivatives.
    forward_kwargs : dict, optional
        Extra keyword arguments for ``forward``. Floating arrays among them (initial states such
        as ``h0``, ``c0``) are copied to float64 and checked as well, against the analytic
        gradient the layer leaves in ``layer.d<name>`` after ``backward`` (``layer.dh0``); the
        report names them by their keyword. Anything else (integer ``lengths``, sizes) is passed
        through unchanged and not differentiated.

    Returns
    -------
    GradcheckReport
        ``report.passed`` is True only if every tensor passed and no contract problem was found.
    """
    check_contract(layer)
    name = repr(layer)
    for k, p in layer.params.items():
        if np.asarray(p).dtype != np.float64:
            raise TypeError(f"{name}: gradient checks run in float64, but params[{k!r}] is "
                            f"{np.asarray(p).dtype}; build the layer with dtype=np.float64 "
                            "(or call layer.astype(np.float64))")
    kwargs = {k: np.array(v, dtype=np.float64)
              if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating) else v
              for k, v in (forward_kwargs or {}).items()}
    float_kwargs = [k for k, v in kwargs.items()
                    if isinstance(v, np.ndarray) and v.dtype == np.float64]
    inputs = [np.array(x, dtype=np.float64) if np.issubdtype(np.asarray(x).dtype, np.floating)
              else np.asarray(x) for x in _as_tuple(inputs)]
    float_pos = [i for i, x in enumerate(inputs) if x.dtype == np.float64]
    report = GradcheckReport(layer=name, tol=tol, eps=eps)
    # Mixed with a constant so that dy never equals an input the caller drew with the same seed.
    rng = np.random.default_rng([seed, 0x6C6B])

    gens = _generators(layer)
    states = [g.bit_generator.state for g in gens]

    def run() -> list:
        for g, s in zip(gens, states):
            g.bit_generator.state = s
        return [np.array(y, dtype=np.float64) for y in _as_tuple(layer.forward(*inputs, **kwargs))]

    originals = [x.copy() for x in inputs]
    kw_originals = {k: kwargs[k].copy() for k in float_kwargs}
    y0 = run()
    for i, (x, x0) in enumerate(zip(inputs, originals)):
        if not np.array_equal(x, x0, equal_nan=True):
            report.problems.append(f"forward modified its input {i} in place")
            inputs[i][...] = x0
    for k, v0 in kw_originals.items():
        if not np.array_equal(kwargs[k], v0, equal_nan=True):
            report.problems.append(f"forward modified its keyword argument {k} in place")
            kwargs[k][...] = v0
    if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(y0, run())):
        report.problems.append("forward is not deterministic (two calls on the same input differ)")
    if any(not np.all(np.isfinite(y)) for y in y0):
        report.problems.append("forward produced NaN or infinity")
    if report.problems:
        return report

    dys = [rng.standard_normal(y.shape) for y in y0]
    _zero_grad(layer)
    run()
    dx = _as_tuple(layer.backward(*dys))
    targets = []
    if len(dx) < len(float_pos):
        report.problems.append(f"backward returned {len(dx)} gradient(s) for {len(float_pos)} "
                               "floating input(s)")
        return report
    for j, i in enumerate(float_pos):
        g = np.asarray(dx[j])
        label = "x" if len(inputs) == 1 else f"inputs[{i}]"
        if g.shape != inputs[i].shape:
            report.problems.append(f"backward returned a gradient of shape {g.shape} for {label} "
                                   f"of shape {inputs[i].shape}")
            continue
        targets.append((label, inputs[i], g.astype(np.float64)))
    for k in float_kwargs:
        g = getattr(layer, "d" + k, None)
        if g is None:
            report.problems.append(f"forward_kwargs[{k!r}] is a float array, but the layer has no "
                                   f"gradient layer.d{k} after backward")
            continue
        g = np.asarray(g)
        if g.shape != kwargs[k].shape:
            report.problems.append(f"layer.d{k} has shape {g.shape}, {k} has {kwargs[k].shape}")
            continue
        targets.append((k, kwargs[k], g.astype(np.float64)))
    for k, p in layer.params.items():
        targets.append((k, p, np.array(layer.grads[k], dtype=np.float64)))

    for label, arr, analytic in targets:
        report.tensors.append(_check_tensor(label, arr, analytic, run, dys, y0, eps, tol, rng,
                                            max_coords, n_directions))
    return report


def _check_tensor(label, arr, analytic, run, dys, y0, h, tol, rng, max_coords, n_directions):
    original = arr.copy()

    def slopes(v):
        """D(h), D(2h) and the one-sided slopes at h along direction v."""
        ys = {}
        for t in (h, -h, 2 * h, -2 * h):
            arr[...] = original + t * v
            ys[t] = run()
        arr[...] = original
        dot = lambda a, b: sum(float(np.sum((ya - yb) * d)) for ya, yb, d in zip(a, b, dys))
        # rounding noise of the estimate: a few ulps of every output the step changed, × |δ|, / h
        noise = sum(float(np.sum(np.abs(y * d)[ya != yb]))
                    for y, ya, yb, d in zip(y0, ys[2 * h], ys[-2 * h], dys))
        return (dot(ys[h], ys[-h]) / (2 * h), dot(ys[2 * h], ys[-2 * h]) / (4 * h),
                dot(ys[h], y0) / h, dot(y0, ys[-h]) / h, _NOISE * noise / h)

    size = arr.size
    if size <= max_coords:
        coords = np.arange(size)
        n_dirs = 0
    else:
        coords = np.sort(rng.choice(size, size=max_coords, replace=False))
        n_dirs = n_directions
    labels, a_vals, estimates = [], [], []
    for c in coords:
        idx = np.unravel_index(c, arr.shape)
        v = np.zeros(arr.shape)
        v[idx] = 1.0
        labels.append(str(tuple(int(i) for i in idx)))
        a_vals.append(float(analytic[idx]))
        estimates.append(slopes(v))
    for d in range(n_dirs):
        v = rng.standard_normal(arr.shape)
        v /= np.linalg.norm(v)
        labels.append(f"dir {d}")
        a_vals.append(float(np.sum(analytic * v)))
        estimates.append(slopes(v))

    a = np.array(a_vals)
    est = np.array(estimates).reshape(-1, 5)
    d1, d2, fwd, bwd, noise = est.T
    n = (4 * d1 - d2) / 3
    scale = float(max(np.max(np.abs(a), initial=0.0), np.max(np.abs(n), initial=0.0)))
    kink = ((np.abs(fwd - bwd) > _KINK * np.maximum(np.maximum(np.abs(fwd), np.abs(bwd)), scale))
            | (np.abs(d1 - d2) > _KINK * np.maximum(np.maximum(np.abs(d1), np.abs(d2)), scale)))
    tiny = np.maximum(max(_FLOOR * scale, 1e-300), noise / _NOISE_REL)
    rel = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), tiny)
    rel[kink] = np.nan
    n_kinks = int(kink.sum())
    if scale <= _VACUOUS:
        status, worst = "vacuous", 0
        max_rel = 0.0
    elif n_kinks == len(rel):
        status, worst, max_rel = "kink", 0, float("nan")
    else:
        worst = int(np.nanargmax(rel))
        max_rel = float(rel[worst])
        status = "pass" if max_rel < tol else "fail"
    return TensorCheck(name=label, shape=tuple(arr.shape), status=status, max_rel_error=max_rel,
                       worst=labels[worst] if labels else "-",
                       analytic=float(a[worst]) if len(a) else 0.0,
                       numeric=float(n[worst]) if len(n) else 0.0,
                       n_coords=len(coords), n_directions=n_dirs, n_kinks=n_kinks)


class LossAsLayer:
    """Adapt a loss (``forward(pred, target) -> float``, ``backward() -> dpred``) to the Layer
    contract with the target fixed, so the same checker verifies losses: y = loss(pred) is a
    0-d array and backward(δ) = δ · ∂loss/∂pred."""

    def __init__(self, loss, target):
        self.loss, self.target = loss, target
        self.params, self.grads = {}, {}

    def forward(self, pred):
        return np.array(self.loss.forward(pred, self.target))

    def backward(self, dy):
        return np.asarray(dy) * self.loss.backward()

    def __repr__(self) -> str:
        return repr(self.loss)
