"""Finite-difference gradient checking for anything that follows the Layer contract.

The checked scalar is L = Σ_o ⟨y_o, δ_o⟩ for the layer's outputs y_o and a random upstream
gradient δ_o, so the analytic gradients are exactly what ``backward(δ)`` returns (inputs) and
accumulates into ``grads`` (parameters) after ``zero_grad()``.

Numeric derivative of L along a direction v (a unit coordinate e_i, or a random unit vector for
large tensors) with the fourth-order central difference

    D(h) = Σ_o ⟨y_o(+h) − y_o(−h), δ_o⟩ / 2h,        n = (4 D(h) − D(2h)) / 3,

in float64 with h = 1e-4 by default: truncation error O(h⁴), rounding error ≈ 1e-16·|y|/h.
A direction where D(h) alone already agrees with the analytic value within a tenth of the
tolerance stops after two forward calls (see :mod:`layerkit.check.numeric`).
Differences are taken output by output before the dot product with δ, so unchanged outputs
cancel exactly.

Per element, relative error |a − n| / max(|a|, |n|, tiny) with tiny = max(1e-4 · S, r / ρ),
S the largest |a| or |n| of that tensor, r the rounding noise of that numeric estimate
(8 ulps of every output value the step changed, times |δ|, over h) and ρ a tenth of the dtype's
default tolerance (1e-8 in float64, 1e-4 in float32): an element whose gradient is below 1e-4
of the tensor's scale is held to an absolute error of 1e-4·S·tol, and a difference within the
rounding noise counts as an error of at most ρ, so with the default tolerance a difference must
exceed 10× the noise to fail: nothing is asked to agree more closely than floating point can
tell (a tiny gradient reached through a saturated
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

Beyond the numbers, the checker says what is wrong where it can: every failing tensor gets a
named pattern from :mod:`layerkit.diagnosis` (sign flipped, scaled by k, transposed, ...), and
the layer as a whole is checked for a backward that is not linear in dy (it ignores dy), for a
forward that is not deterministic or modifies its input, and for gradients of the wrong shape.

Then the contract probes of :mod:`layerkit.check.probes` run: backward must accumulate into
the same ``grads`` arrays (pre-filled values plus its gradient), leave dy and x as they were,
give the same result when called twice after one forward, and not depend on an earlier forward
(a fresh copy of the layer sees other inputs first). The check runs at parameters moved off
constant values (γ = 1, β = 0, zero biases), so a bug that cancels there shows; they are
restored afterwards. Randomness is frozen: numpy Generators and legacy RandomStates held by the
layer (also inside lists and dicts) and numpy's global legacy state are reset before every
forward, and the global state is restored at the end.

A layer with ``needs_input_grad = False`` (allowed to skip ∂L/∂x and return None) is checked
with the flag set to True, input gradient included, and the flag is restored afterwards (also
on an exception). One more ``backward(δ)`` with the flag False must then accumulate parameter
gradients bit-identical to those with True and return None (or, for a layer that ignores the
flag, gradients of the inputs' shapes); anything else is a contract problem.

float32 layers are checked with ``dtype=np.float32``: the same scheme, with a larger step and
tolerance (defaults in ``DEFAULTS``) because float32 carries 7 digits, not 16.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np

from . import adapters, numeric, probes
from .diagnosis import diagnose
from .numeric import DEFAULTS
from .report import GradcheckReport, Problem, TensorCheck

DEFAULT_EPS, DEFAULT_TOL = DEFAULTS[np.dtype(np.float64)]


# -- helpers ------------------------------------------------------------------------------------

def _as_tuple(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _random_sources(obj, seen=None) -> list:
    """Every numpy Generator and legacy RandomState held by a layer, its children, or lists,
    tuples and dicts among its attributes (to freeze randomness)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, (np.random.Generator, np.random.RandomState)):
        return [obj]
    if isinstance(obj, dict):
        values = obj.values()
    elif isinstance(obj, (list, tuple)):
        values = obj
    elif hasattr(obj, "forward") and hasattr(obj, "backward") and hasattr(obj, "__dict__"):
        values = vars(obj).values()
    else:
        return []
    return [src for v in values for src in _random_sources(v, seen)]


def _state(source):
    if isinstance(source, np.random.Generator):
        return source.bit_generator.state
    return source.get_state()


def _set_state(source, state) -> None:
    if isinstance(source, np.random.Generator):
        source.bit_generator.state = state
    else:
        source.set_state(state)


class ContractError(TypeError):
    """The object checked does not follow the Layer contract (or has the wrong dtype)."""


CONTRACT = ("A layer needs forward(x) -> y, backward(dy) -> dx, and dicts params and grads with "
            "the same keys and shapes (backward accumulates into grads).")


def check_contract(layer) -> None:
    """Raise TypeError saying what is missing if ``layer`` does not follow the Layer contract."""
    missing = [a for a in ("forward", "backward") if not callable(getattr(layer, a, None))]
    missing += [a for a in ("params", "grads") if not isinstance(getattr(layer, a, None), dict)]
    if missing:
        raise ContractError(f"{layer!r} does not follow the Layer contract: missing "
                        f"{', '.join(missing)}. {CONTRACT}")
    params, grads = layer.params, layer.grads
    if set(params) != set(grads):
        raise ContractError(f"{layer!r}: params and grads must have the same keys, got "
                        f"{sorted(params)} and {sorted(grads)}")
    for k in params:
        if np.shape(params[k]) != np.shape(grads[k]):
            raise ContractError(f"{layer!r}: grads[{k!r}] has shape {np.shape(grads[k])}, "
                            f"params[{k!r}] has {np.shape(params[k])}")


def _zero_grad(layer) -> None:
    if hasattr(layer, "zero_grad"):
        layer.zero_grad()
    else:
        for g in layer.grads.values():
            g[...] = 0


# -- the checker --------------------------------------------------------------------------------

def gradcheck(layer, inputs, *, eps: float | None = None, tol: float | None = None,
              seed: int = 0, max_coords: int = 64, n_directions: int = 4,
              forward_kwargs: dict | None = None, dtype=np.float64) -> GradcheckReport:
    """Check a layer's ``backward`` against finite differences of its ``forward``.

    Parameters
    ----------
    layer : object with ``forward``, ``backward``, ``params`` and ``grads``
        Built-in or a user's own class. Parameters must have the checked ``dtype`` (build the
        layer with ``dtype=np.float64`` or call ``layer.astype(np.float64)``).
    inputs : ndarray or tuple of ndarrays
        Arguments of ``forward``. Floating inputs are copied to ``dtype`` and checked; integer
        inputs (class ids, token ids) are passed as they are and not differentiated.
    eps : float, optional
        Step h of the finite difference (default 1e-4 in float64, 1e-2 in float32).
    tol : float, optional
        A tensor passes when its largest relative error is below ``tol`` (default 1e-7 in
        float64, 1e-3 in float32).
    seed : int
        Seed for the upstream gradient and the sampled coordinates.
    max_coords : int
        Tensors with more elements are checked on this many random coordinates plus
        ``n_directions`` random-direction directional derivatives.
    forward_kwargs : dict, optional
        Extra keyword arguments for ``forward``. Floating arrays among them (initial states such
        as ``h0``, ``c0``) are copied to ``dtype`` and checked as well, against the analytic
        gradient the layer leaves in ``layer.d<name>`` after ``backward`` (``layer.dh0``); the
        report names them by their keyword. Anything else (integer ``lengths``, sizes) is passed
        through unchanged and not differentiated.
    dtype : np.float64 or np.float32
        Precision of the check. float64 is the reference; float32 checks a float32 layer as is.

    Returns
    -------
    GradcheckReport
        ``report.passed`` is True only if every tensor passed and no contract problem was found.
        Exceptions raised by the layer's own ``forward`` or ``backward`` propagate unchanged.
    """
    dtype = np.dtype(dtype)
    if dtype not in DEFAULTS:
        raise TypeError(f"gradcheck: dtype must be float64 or float32, got {dtype}")
    eps = DEFAULTS[dtype][0] if eps is None else float(eps)
    tol = DEFAULTS[dtype][1] if tol is None else float(tol)
    if not (eps > 0 and tol > 0):
        raise ValueError(f"gradcheck: eps and tol must be positive, got eps={eps}, tol={tol}")
    adapted = _adapt(layer, inputs, forward_kwargs, dtype, seed)
    if adapted is not layer:
        report = gradcheck(adapted, adapted.inputs, eps=eps, tol=tol, seed=seed,
                           max_coords=max_coords, n_directions=n_directions,
                           forward_kwargs=forward_kwargs if isinstance(
                               adapted, adapters.AttributeLayer) else None,
                           dtype=dtype)
        return adapters.name_report(report, adapted)
    check_contract(layer)
    name = repr(layer)
    for k, p in layer.params.items():
        if np.asarray(p).dtype != dtype:
            raise ContractError(f"{name}: the gradient check runs in {dtype}, but params[{k!r}] is "
                            f"{np.asarray(p).dtype}; build the layer with dtype=np.{dtype} "
                            f"(or call layer.astype(np.{dtype}))")
    skips = not getattr(layer, "needs_input_grad", True)
    if skips:
        layer.needs_input_grad = True
    try:
        return _gradcheck(layer, name, inputs, eps, tol, seed, max_coords, n_directions,
                          forward_kwargs, dtype, skips)
    finally:
        if skips:
            layer.needs_input_grad = False


def _adapt(layer, inputs, forward_kwargs, dtype, seed):
    """A course format (a function pair, a loss function, an attribute-style class) adapted
    to the Layer contract; the layer itself when it follows the contract or is none of those
    (check_contract then says what is missing)."""
    if adapters.follows_contract(layer) or any(
            isinstance(getattr(layer, k, None), dict) for k in ("params", "grads")):
        return layer       # the Layer contract, or half of it: check_contract names the rest
    is_function = callable(layer) and not hasattr(layer, "forward")
    has_methods = callable(getattr(layer, "forward", None)) and \
        callable(getattr(layer, "backward", None))
    if not (is_function or has_methods):
        return layer
    return adapters.as_layer(layer, inputs, forward_kwargs=forward_kwargs, dtype=dtype,
                             seed=seed)


def _gradcheck(layer, name, inputs, eps, tol, seed, max_coords, n_directions, forward_kwargs,
               dtype, skips) -> GradcheckReport:
    """The body of :func:`gradcheck` on a validated layer whose flag is True; ``skips``: also
    check backward with needs_input_grad = False. Parameters that are constant (γ = 1, β = 0)
    are moved to random values for the check and restored afterwards."""
    saved = probes.move_constant_params(layer, seed)
    fresh = _fresh_copy(layer)       # before any forward of the checker: for the stale-cache probe
    try:
        with _frozen_global_random():
            return _run_checks(layer, fresh, name, inputs, eps, tol, seed, max_coords,
                               n_directions, forward_kwargs, dtype, skips)
    finally:
        probes.restore_params(layer, saved)


def _fresh_copy(layer):
    """A deep copy of the layer as it is now, or None when it cannot be copied."""
    try:
        return copy.deepcopy(layer)
    except Exception:       # a layer holding a file, a lock, a module: no stale-cache probe
        return None


@contextlib.contextmanager
def _frozen_global_random():
    """numpy's legacy global random state is saved, and restored afterwards: forward calls that
    draw from ``np.random.rand`` are made repeatable by :class:`_Forward`."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def _run_checks(layer, fresh, name, inputs, eps, tol, seed, max_coords, n_directions,
                forward_kwargs, dtype, skips) -> GradcheckReport:
    run = _Forward(layer, *_prepare_inputs(inputs, forward_kwargs, dtype), dtype)
    report = GradcheckReport(layer=name, tol=tol, eps=eps, dtype=str(dtype))
    # Mixed with a constant so that dy never equals an input the caller drew with the same seed.
    rng = np.random.default_rng([seed, 0x6C6B])
    x_originals = [x.copy() for x in run.inputs]
    y0, report.problems = _check_forward(run)
    if report.problems:
        return report
    dys = [rng.standard_normal(y.shape) for y in y0]
    # backward(2δ) first: doubling δ scales every term of a linear backward exactly, so any
    # difference from 2·backward(δ) is real, not rounding.
    doubled, _ = _analytic_gradients(run, dys, 2.0)
    targets, problems = _analytic_gradients(run, dys, 1.0)
    report.problems += problems
    if doubled is None or targets is None:
        return report
    if not problems:        # every gradient has its shape: the contract probes can compare
        if skips:
            report.problems += _check_skip(layer, run, [d.astype(dtype) for d in dys], targets,
                                           [run.inputs[i].shape for i in run.float_pos])
        report.problems += _contract_probes(run, fresh, dys, targets, x_originals, seed)
    not_linear, problems = _check_linear_in_dy(targets, doubled)
    report.problems += problems
    for label, arr, analytic in targets:
        check = _check_tensor(label, arr, analytic, run, dys, y0, eps, tol, rng,
                              max_coords, n_directions)
        if check.status == "fail":
            check.pattern, check.diagnosis = not_linear.get(label) or diagnose(
                check, analytic, tol, is_param=label in layer.params)
        report.tensors.append(check)
    return report


def _contract_probes(run, fresh, dys, targets, x_originals, seed) -> list:
    """The problems found by :mod:`probes` (accumulation, dy or x modified by backward,
    reentrancy, stale cache), compared with the gradients of the clean backward(δ)."""
    layer = run.layer
    n_params = len(layer.params)
    reference = {k: g for k, _, g in targets[len(targets) - n_params:]}
    probe = probes.Runner(layer, run.inputs, run.kwargs, dys, run.dtype, run,
                          lambda: _zero_grad(layer))
    found = probes.accumulation(probe, reference, seed)
    found += probes.mutations(probe, x_originals)
    found += probes.reentrancy(probe, reference)
    if fresh is not None:
        reference_dx = [g for _, _, g in targets[:len(run.float_pos)]]
        fresh_run = _Forward(fresh, run.inputs, run.kwargs, run.float_pos, run.float_kwargs,
                             run.dtype, global_state=run.global_state)
        fresh_probe = probes.Runner(fresh, run.inputs, run.kwargs, dys, run.dtype, fresh_run,
                                    lambda: _zero_grad(fresh))
        found += probes.stale_cache(fresh_probe, reference, reference_dx, seed)
    _zero_grad(layer)
    return found


def _prepare_inputs(inputs, forward_kwargs, dtype) -> tuple:
    """``(inputs, kwargs, float_pos, float_kwargs)``: the arguments of forward with floating
    arrays copied to ``dtype`` (the checked ones: positions in ``inputs``, names in ``kwargs``)
    and everything else (integer ids, lengths, sizes) passed as it is."""
    is_float = lambda v: isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating)
    kwargs = {k: np.array(v, dtype=dtype) if is_float(v) else v
              for k, v in (forward_kwargs or {}).items()}
    float_kwargs = [k for k, v in kwargs.items() if is_float(v)]
    inputs = [np.array(x, dtype=dtype) if np.issubdtype(np.asarray(x).dtype, np.floating)
              else np.asarray(x) for x in _as_tuple(inputs)]
    float_pos = [i for i, x in enumerate(inputs) if x.dtype == dtype]
    return inputs, kwargs, float_pos, float_kwargs


class _Forward:
    """``run()`` = the layer's outputs as float64 arrays for forward(*inputs, **kwargs), with
    every numpy Generator and RandomState of the layer reset to its state at construction
    first, so every call draws the same randomness; numpy's global legacy state is reset too
    once a forward has been seen to draw from it (restoring it costs more than many forwards).
    The input arrays are the checker's own, perturbed in place."""

    def __init__(self, layer, inputs: list, kwargs: dict, float_pos: list, float_kwargs: list,
                 dtype, global_state=None):
        self.layer, self.inputs, self.kwargs, self.dtype = layer, inputs, kwargs, dtype
        self.float_pos, self.float_kwargs = float_pos, float_kwargs
        self.sources = _random_sources(layer)
        self.states = [_state(g) for g in self.sources]
        self.global_state = np.random.get_state() if global_state is None else global_state
        self.uses_global = True if global_state is not None else None

    def __call__(self) -> list:
        for g, s in zip(self.sources, self.states):
            _set_state(g, s)
        if self.uses_global is not False:
            np.random.set_state(self.global_state)
        out = self.layer.forward(*self.inputs, **self.kwargs)
        if self.uses_global is None:      # the first call tells
            self.uses_global = not _same_state(np.random.get_state(), self.global_state)
        return [np.array(y, dtype=np.float64) for y in _as_tuple(out)]


def _same_state(a, b) -> bool:
    """Two legacy MT19937 states (numpy's get_state tuples) are the same."""
    return a[2] == b[2] and a[3] == b[3] and np.array_equal(a[1], b[1])


def _check_forward(run: _Forward) -> tuple[list, list]:
    """``(y0, problems)``: the outputs of a first forward, and the problems of forward itself:
    it modifies an input in place (the input is then restored), is not deterministic, or
    produces NaN or infinity."""
    problems = []
    originals = [x.copy() for x in run.inputs]
    kw_originals = {k: run.kwargs[k].copy() for k in run.float_kwargs}
    y0 = run()
    for i in probes.restore_changed(run.inputs, originals):
        problems.append(Problem(
            "modifies input in place",
            f"forward modified its input {i} in place (e.g. x *= 2 or x[...] = ...); the "
            "caller's array must stay as it was: work on a copy or write to a new array"))
    names = list(kw_originals)
    for j in probes.restore_changed([run.kwargs[k] for k in names], list(kw_originals.values())):
        problems.append(Problem("modifies input in place",
                                f"forward modified its keyword argument {names[j]} in place"))
    if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(y0, run())):
        problems.append(Problem(
            "not deterministic",
            "forward is not deterministic: two calls on the same input and parameters differ "
            "(state that changes between calls, or randomness not drawn from a numpy Generator "
            "held by the layer)"))
    if any(not np.all(np.isfinite(y)) for y in y0):
        problems.append(Problem("not finite", "forward produced NaN or infinity"))
    return y0, problems


def _analytic_gradients(run: _Forward, dys: list, scale: float) -> tuple[list | None, list]:
    """``(targets, problems)`` from ``zero_grad(); forward; backward(scale·δ)``: targets are
    (label, array, analytic gradient) for every checked tensor whose gradient has the right
    shape (None when backward returned too few gradients), problems the ones it has not."""
    layer, inputs, kwargs = run.layer, run.inputs, run.kwargs
    _zero_grad(layer)
    run()
    dx = _as_tuple(layer.backward(*[(scale * d).astype(run.dtype) for d in dys]))
    if len(dx) < len(run.float_pos):
        return None, [Problem("wrong shape", f"backward returned {len(dx)} gradient(s) for "
                                             f"{len(run.float_pos)} floating input(s)")]
    out, problems = [], []
    for j, i in enumerate(run.float_pos):
        g = np.asarray(dx[j])
        label = _input_label(layer, i, len(inputs))
        if g.shape != inputs[i].shape:
            problems.append(Problem(
                "wrong shape", f"backward returned a gradient of shape {g.shape} for {label} "
                f"of shape {inputs[i].shape}: dx must have the shape of x"))
            continue
        out.append((label, inputs[i], g.astype(np.float64)))
    for k in run.float_kwargs:
        g = getattr(layer, "d" + k, None)
        if g is None:
            problems.append(Problem(
                "missing gradient", f"forward_kwargs[{k!r}] is a float array, but the layer "
                f"has no gradient layer.d{k} after backward"))
            continue
        g = np.asarray(g)
        if g.shape != kwargs[k].shape:
            problems.append(Problem(
                "wrong shape", f"layer.d{k} has shape {g.shape}, {k} has {kwargs[k].shape}"))
            continue
        out.append((k, kwargs[k], g.astype(np.float64)))
    for k, p in layer.params.items():
        g = np.array(layer.grads.get(k), dtype=np.float64)
        if g.shape != np.shape(p):
            problems.append(Problem(
                "wrong shape", f"after backward grads[{k!r}] has shape {g.shape}, params[{k!r}] "
                f"has {np.shape(p)}: a gradient must have its parameter's shape"))
            continue
        out.append((k, p, g))
    return out, problems


def _input_label(layer, i: int, n_inputs: int) -> str:
    """The report's name for input i: the layer's own ``input_names[i]`` when it has them (an
    adapted course function names its arguments), else ``x`` or ``inputs[i]``."""
    names = getattr(layer, "input_names", None)
    if isinstance(names, (tuple, list)) and len(names) == n_inputs and \
            all(isinstance(v, str) for v in names):
        return names[i]
    return "x" if n_inputs == 1 else f"inputs[{i}]"


def _check_skip(layer, run, dys, targets, x_shapes) -> list:
    """backward(δ) with needs_input_grad = False must accumulate parameter gradients
    bit-identical to those in ``targets`` (from backward(δ) with True) and return None, or
    arrays of the input shapes ``x_shapes`` (a layer that ignores the flag). Returns the
    problems found."""
    layer.needs_input_grad = False
    try:
        _zero_grad(layer)
        run()
        dx = layer.backward(*dys)
    finally:
        layer.needs_input_grad = True
    problems = []
    if dx is not None:
        got = _as_tuple(dx)
        if len(got) < len(x_shapes) or any(not isinstance(g, np.ndarray) or g.shape != s
                                           for g, s in zip(got, x_shapes)):
            shapes = ", ".join(str(np.shape(g)) for g in got)
            problems.append(Problem(
                "wrong shape", f"with needs_input_grad = False backward returned {shapes}: it "
                f"must return None (the input gradient skipped) or the input gradient(s) of "
                f"shape {', '.join(map(str, x_shapes))}"))
    n = len(layer.params)
    expected = {k: g for k, (_, _, g) in zip(layer.params, targets[len(targets) - n:])}
    differ = [k for k, g in expected.items()
              if not np.array_equal(np.asarray(layer.grads[k], dtype=np.float64), g,
                                    equal_nan=True)]
    if differ:
        problems.append(Problem(
            "skip changes grads", f"with needs_input_grad = False backward accumulated other "
            f"gradients for {', '.join(differ)} than with True: skipping ∂L/∂x must leave every "
            "parameter gradient exactly as it is (compute them before returning None)"))
    return problems


def _check_linear_in_dy(targets, doubled) -> tuple[dict, list]:
    """backward must be linear in dy: backward(2δ) = 2·backward(δ), tensor by tensor.
    Returns ({tensor label: (pattern, sentence)} for the tensors where it is not, problems)."""
    same, other = [], []
    for (label, _, g1), (_, _, g2) in zip(targets, doubled):
        size = max(float(np.max(np.abs(g1), initial=0.0)), 1e-300)
        if np.max(np.abs(g2 - 2 * g1), initial=0.0) <= 1e-10 * size:
            continue
        (same if np.max(np.abs(g2 - g1), initial=0.0) <= 1e-10 * size else other).append(label)
    problems = []
    if same:
        problems.append(Problem(
            "ignores dy", f"backward ignores dy: doubling dy leaves the gradient of "
            f"{', '.join(same)} unchanged. By the chain rule every gradient is linear in dy "
            "(e.g. dx = dy * f'(x), not f'(x))"))
    if other:
        problems.append(Problem(
            "not linear in dy", f"backward is not linear in dy: doubling dy does not double the "
            f"gradient of {', '.join(other)}; a term that does not depend on dy was added "
            "(or grads are not reset by zero_grad)"))
    found = {label: ("ignores dy", "the gradient does not change when dy does") for label in same}
    found.update({label: ("not linear in dy", "the gradient does not scale with dy")
                  for label in other})
    return found, problems


def _check_tensor(label, arr, analytic, run, dys, y0, h, tol, rng, max_coords, n_directions):
    evaluator = numeric.Evaluator(run, dys, y0, arr.dtype)
    found = numeric.check_elements(arr, analytic, evaluator, h, tol, rng, max_coords,
                                   n_directions)
    elements = found["elements"]
    judged = [e for e in elements if e["rel_error"] is not None]
    n_kinks = sum(e["kink"] for e in elements)
    n_unresolved = sum(e["unresolved"] for e in elements)
    smooth = [e for e in elements if not e["kink"]]
    if not smooth:
        status, max_rel, worst = "kink", float("nan"), elements[0] if elements else None
    elif _vacuous(smooth):
        status, max_rel, worst = "vacuous", 0.0, smooth[0]
    elif not judged:
        status, max_rel, worst = "unresolved", float("nan"), smooth[0]
    else:
        worst = max(judged, key=lambda e: e["rel_error"])
        max_rel = worst["rel_error"]
        status = "pass" if max_rel < tol else "fail"
    return TensorCheck(name=label, shape=tuple(arr.shape), status=status, max_rel_error=max_rel,
                       worst=worst["index"] if worst else "-",
                       analytic=worst["analytic"] if worst else 0.0,
                       numeric=worst["numeric"] if worst else 0.0,
                       n_coords=found["n_coords"], n_directions=found["n_directions"],
                       n_kinks=n_kinks, n_unresolved=n_unresolved, elements=elements)


def _vacuous(elements) -> bool:
    """Nothing to check: every analytic and numeric value is zero, or within 10× the rounding
    noise of the estimates."""
    size = max(max(abs(e["analytic"]), abs(e["numeric"])) for e in elements)
    return size == 0 or size <= 10 * max(e["noise"] for e in elements)


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
