"""Contract probes: ways a backward can be wrong that finite differences of one clean
forward/backward never see.

Every probe reruns the layer on the checker's inputs and upstream gradient δ and compares with
the *reference*, the gradients of a clean ``zero_grad(); forward(x); backward(δ)``:

- accumulation: ``grads`` pre-filled with random values G₀ must end at G₀ + reference, in the
  same arrays (``grads[k] = dW`` or ``grads[k] = new array`` pass a check that zeroes first);
- backward must leave dy and the caller's inputs as they were;
- reentrancy: one forward, two backwards give the same dx twice and twice the parameter
  gradients (a backward that rewrites its own cache does not);
- stale cache: on a copy of the layer taken before its first forward, forward on other inputs,
  then on x, then backward gives the reference (a cache written only on the first call, or
  kept from an earlier input, does not).

Each probe returns a list of :class:`~layerkit.check.report.Problem`; none raises for a layer
that breaks the contract.
"""

from __future__ import annotations

import numpy as np

from .report import Problem


class Runner:
    """What the probes need to drive a layer: ``forward()`` on the (mutable) input arrays with
    randomness frozen, ``backward()`` with δ in the layer's dtype, and ``zero_grad()``."""

    def __init__(self, layer, inputs: list, kwargs: dict, dys: list, dtype, forward, zero_grad):
        self.layer, self.inputs, self.kwargs = layer, inputs, kwargs
        self.dys, self.dtype = dys, dtype
        self.forward, self.zero_grad = forward, zero_grad

    def dy(self) -> list:
        """A fresh copy of δ in the layer's dtype (the probes compare it afterwards)."""
        return [d.astype(self.dtype) for d in self.dys]

    def backward(self, dys=None) -> tuple:
        dx = self.layer.backward(*(self.dy() if dys is None else dys))
        return dx if isinstance(dx, (tuple, list)) else (dx,)


def _close(a, b, scale: float, dtype) -> bool:
    """a ≈ b up to rounding of values of size ``scale`` in ``dtype`` (with a wide margin)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    slack = 1e3 * float(np.finfo(dtype).eps) * max(scale, 1e-300)
    return bool(np.all(np.abs(a - b) <= slack))


def _scale(*arrays) -> float:
    return max((float(np.max(np.abs(np.asarray(a, dtype=np.float64)), initial=0.0))
                for a in arrays), default=0.0)


def restore_changed(arrays, originals) -> list:
    """The positions where an array differs from its original copy (NaN equal to NaN); those
    arrays are put back to their originals."""
    changed = [i for i, (x, x0) in enumerate(zip(arrays, originals))
               if not np.array_equal(x, x0, equal_nan=True)]
    for i in changed:
        arrays[i][...] = originals[i]
    return changed


def accumulation(run: Runner, reference: dict, seed: int) -> list:
    """grads pre-filled with G₀ must end at G₀ + reference, in the same array objects."""
    layer = run.layer
    if not reference:
        return []
    rng = np.random.default_rng([seed, 0xACC])
    run.zero_grad()
    before = {k: layer.grads[k] for k in reference}
    prefill = {}
    for k, g in before.items():
        prefill[k] = rng.standard_normal(g.shape) * max(_scale(reference[k]), 1.0)
        g[...] = prefill[k]
    run.forward()
    run.backward()
    problems, assigned, rebound, other = [], [], [], []
    for k, g0 in prefill.items():
        now = layer.grads[k]
        if now is not before[k]:
            rebound.append(k)
            continue
        scale = _scale(g0, reference[k])
        if _close(np.asarray(now, dtype=np.float64) - g0, reference[k], scale, run.dtype):
            continue
        (assigned if _close(now, reference[k], scale, run.dtype) else other).append(k)
    run.zero_grad()
    if assigned:
        problems.append(Problem(
            "assigned, not accumulated",
            f"backward overwrites grads[{', '.join(map(repr, assigned))}] instead of adding to "
            "it: the gradients of two backward calls (or two uses of a shared parameter) must "
            "add up. Write grads[k] += dW, not grads[k] = dW (zero_grad() resets them)"))
    if rebound:
        problems.append(Problem(
            "grads replaced",
            f"backward replaced the array grads[{', '.join(map(repr, rebound))}] with a new one: "
            "optimizers and containers hold the original array, so the update never sees it. "
            "Accumulate in place: grads[k] += dW (or grads[k][...] += dW)"))
    if other:
        problems.append(Problem(
            "not accumulated",
            f"with grads[{', '.join(map(repr, other))}] pre-filled, backward did not end at the "
            "pre-filled values plus its gradient: backward must add its gradient to grads[k] "
            "and leave the rest as it was"))
    return problems


def mutations(run: Runner, x_originals: list) -> list:
    """backward must not modify dy, nor the inputs forward was called on."""
    run.zero_grad()
    run.forward()
    dys = run.dy()
    run.backward(dys)
    problems = []
    changed = [i for i, (d, d0) in enumerate(zip(dys, run.dys))
               if not np.array_equal(d.astype(np.float64), d0.astype(run.dtype).astype(np.float64),
                                     equal_nan=True)]
    if changed:
        problems.append(Problem(
            "modifies dy in place",
            "backward modified dy in place (e.g. dy *= mask or dy[x < 0] = 0): in a network dy "
            "is the next layer's dx, and the caller may still use it. Compute into a new array "
            "(dx = dy * mask)"))
    for i in restore_changed(run.inputs, x_originals):
        problems.append(Problem(
            "modifies input in place",
            f"backward modified its input {i} in place (the array passed to forward): the "
            "caller's array must stay as it was"))
    run.zero_grad()
    return problems


def reentrancy(run: Runner, reference: dict) -> list:
    """One forward, two backwards: the same dx twice, and twice the parameter gradients."""
    layer = run.layer
    run.zero_grad()
    run.forward()
    dx1 = [None if d is None else np.array(d, dtype=np.float64) for d in run.backward()]
    once = {k: np.array(layer.grads[k], dtype=np.float64) for k in reference}
    try:
        dx2 = run.backward()
    except Exception as e:       # noqa: BLE001 - any error of the second call is the finding
        run.zero_grad()
        return [Problem(
            "not reentrant",
            f"a second backward after one forward raised {type(e).__name__}: {e}. backward "
            "must read its cache without consuming it (no cache.pop() or self.x = None inside "
            "backward): a network may call it again, and checkers do")]
    twice = {k: np.array(layer.grads[k], dtype=np.float64) for k in reference}
    run.zero_grad()
    same_dx = len(dx1) == len(dx2) and all(
        (a is None and b is None) or (a is not None and b is not None
                                      and _close(a, b, _scale(a), run.dtype))
        for a, b in zip(dx1, dx2))
    doubled = all(_close(twice[k], 2 * once[k], _scale(twice[k], once[k]), run.dtype)
                  for k in reference)
    if same_dx and doubled:
        return []
    what = []
    if not same_dx:
        what.append("dx differs between the two backward calls")
    if not doubled:
        what.append("the parameter gradients did not double")
    return [Problem(
        "not reentrant",
        f"a second backward after one forward: {' and '.join(what)}. backward must read its "
        "cache without changing it (e.g. no x -= mean or cache.pop() inside backward)")]


def stale_cache(run: Runner, reference: dict, reference_dx: list, seed: int) -> list:
    """forward(other inputs), then forward(x), then backward must give the reference.

    ``run`` drives a copy of the layer taken before its first forward (a first-call cache is
    then filled by the other inputs); ``reference_dx`` lists the reference input gradients."""
    floats = [x for x in run.inputs if np.issubdtype(x.dtype, np.floating)]
    if not floats:
        return []
    rng = np.random.default_rng([seed, 0x57A1E])
    originals = [x.copy() for x in floats]
    for x in floats:
        x[...] = x + rng.standard_normal(x.shape) * max(_scale(x), 1.0) * 0.5
    try:
        run.forward()
    except Exception:   # other values the layer rejects: nothing to compare
        pass
    finally:
        for x, x0 in zip(floats, originals):
            x[...] = x0
    run.zero_grad()
    run.forward()
    dx = run.backward()
    grads = {k: np.array(run.layer.grads[k], dtype=np.float64) for k in reference}
    run.zero_grad()
    stale = [k for k in reference
             if not _close(grads[k], reference[k], _scale(reference[k]), run.dtype)]
    stale += [f"dx[{i}]" for i, (a, b) in enumerate(zip(dx, reference_dx))
              if b is not None and (a is None or not _close(a, b, _scale(b), run.dtype))]
    if not stale:
        return []
    return [Problem(
        "stale cache",
        f"after a forward on other inputs and then on x, backward gave other gradients for "
        f"{', '.join(stale)} than after a forward on x alone: forward must overwrite its whole "
        "cache on every call (nothing cached only on the first call or kept from an earlier "
        "input)")]


def move_constant_params(layer, seed: int) -> dict:
    """Give every parameter whose elements are all equal (γ = 1, β = 0, zero-initialized
    weights) random values around that constant, so that a bug which cancels at the initial
    values (dx without γ, a mask built without the bias) shows. Returns the original arrays'
    values by name; :func:`restore_params` puts them back."""
    rng = np.random.default_rng([seed, 0xC0457])
    saved = {}
    for k, p in layer.params.items():
        p = np.asarray(p)
        if p.size > 1 and np.issubdtype(p.dtype, np.floating) and np.all(p == p.flat[0]):
            c = float(p.flat[0])
            saved[k] = p.copy()
            p[...] = c + 0.5 * max(abs(c), 1.0) * rng.standard_normal(p.shape)
    return saved


def restore_params(layer, saved: dict) -> None:
    for k, v in saved.items():
        layer.params[k][...] = v
