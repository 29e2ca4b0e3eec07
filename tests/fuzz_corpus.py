"""A corpus of bad or unusual inputs over every public layer and loss, and the judge of each run.

Each probe returns one outcome:

- ``"correct"``: the answer equals the reference (the same computation on a float64 contiguous
  copy; float32 within float32 rounding; an empty batch gives empty arrays);
- ``"clear"``: ValueError, TypeError, RuntimeError or MemoryError whose message names the layer
  or loss;
- ``"silent wrong"``: no error, but an answer that differs from the reference (or an input
  modified in place);
- ``"unclear"``: any other exception, or one that does not name who raised it.

A crash or hang of the process would stop the run: it is not an outcome a probe can return.
tests/test_fuzz.py runs the whole corpus and hypothesis-drawn variations of it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

import layerkit as lk
from layer_cases import CASES, Case, example_input, output

CLEAR_ERRORS = (ValueError, TypeError, RuntimeError, MemoryError)
OUTCOMES = ("correct", "clear", "silent wrong", "unclear")


def judge(who, run: Callable[[], bool]) -> tuple[str, str]:
    """Call ``run`` (True: right answer, False: wrong); return (outcome, detail). ``who`` is a
    name or a tuple of names (a container and its children) one of which a clear error names."""
    names = (who,) if isinstance(who, str) else tuple(who)
    try:
        ok = run()
    except CLEAR_ERRORS as err:
        msg = str(err)
        named = any(n in msg for n in names)
        return ("clear", msg) if named else ("unclear", f"{type(err).__name__}: {msg}")
    except Exception as err:          # noqa: BLE001 - every other error is what we count
        return "unclear", f"{type(err).__name__}: {err}"
    return ("correct", "") if ok else ("silent wrong", "differs from the reference")


# -- layouts: the same values in other memory layouts ------------------------------------------

def _strided(a):
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def _reversed(a):
    return a[::-1].copy()[::-1] if a.ndim else a


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided": _strided,
    "negative strides": _reversed,
    "read-only": _read_only,
    "broadcast": lambda a: np.broadcast_to(a[:1], a.shape) if a.ndim else a,
}


def _who(layer) -> tuple:
    """The class names of a layer and of every layer inside it."""
    names = [type(layer).__name__]
    for attr in ("layers", "block", "projection", "forward_layer", "backward_layer"):
        inner = getattr(layer, attr, None)
        for child in inner if isinstance(inner, list) else [inner]:
            if child is not None:
                names += _who(child)
    return tuple(names)


def _close(a, b, rtol) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    fa, fb = np.isfinite(a), np.isfinite(b)      # NaN and ±inf must sit in the same places
    if not (np.array_equal(fa, fb) and np.array_equal(np.isnan(a), np.isnan(b))
            and np.array_equal(a[np.isinf(a)], b[np.isinf(b)])):
        return False
    a, b = a[fa], b[fb]
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    return bool(np.all(np.abs(a - b) <= rtol * scale))


def _step(case: Case, x, dy_of, *, dtype=np.float64, training=True):
    """Build the layer, forward x, backward dy_of(y): (y, dx, grads) as float64 copies."""
    layer = case.make(dtype)
    layer.train(training)
    y = output(layer.forward(x))
    dx = layer.backward(dy_of(y))
    grads = {k: np.array(g, dtype=np.float64) for k, g in layer.grads.items()}
    return (np.array(y, dtype=np.float64), None if dx is None else np.array(dx, np.float64),
            grads, layer)


def _dy(y):
    return np.random.default_rng(7).standard_normal(y.shape)


def _same_step(a, b, rtol) -> bool:
    return (_close(a[0], b[0], rtol) and _close(a[1], b[1], rtol) and a[2].keys() == b[2].keys()
            and all(_close(a[2][k], b[2][k], rtol) for k in a[2]))


def probe_layout(case: Case, layout: str, seed: int = 0, scale: float = 1.0,
                 batch: int | None = None) -> tuple[str, str]:
    """x (values times ``scale``, ``batch`` samples) and dy in ``layout``: the same y, dx and
    gradients as from contiguous copies, and neither x nor dy modified."""
    layer_name = _who(case.make(np.float64))
    shape = case.shape if batch is None else (batch,) + case.shape[1:]
    x0 = example_input(case, np.random.default_rng(seed), shape=shape)
    x = LAYOUTS[layout](x0 if case.ids else x0 * scale)
    before = np.array(x)

    def run():
        ref = _step(case, np.ascontiguousarray(x),
                    lambda y: np.ascontiguousarray(LAYOUTS[layout](_dy(y))))
        dys = []

        def dy_of(y):
            dys.append(LAYOUTS[layout](_dy(y)))
            dys.append(np.array(dys[0]))
            return dys[0]
        got = _step(case, x, dy_of)
        untouched = np.array_equal(x, before) and np.array_equal(dys[0], dys[1])
        return untouched and _same_step(got, ref, 1e-10)
    return judge(layer_name, run)


def probe_changed_after_forward(case: Case, seed: int = 0) -> tuple[str, str]:
    """y = forward(x); x[...] = 7; backward(dy): the gradients of the unchanged x (y itself may
    be a view of x, as Flatten's and Identity's are, in PyTorch too: only dx and the parameter
    gradients are compared)."""
    x = example_input(case, np.random.default_rng(seed))
    layer_name = _who(case.make(np.float64))

    def run():
        ref = _step(case, x.copy(), _dy)

        def dy_of(y):
            x[...] = 1 if case.ids else 7
            return _dy(y)
        got = _step(case, x, dy_of)
        return _same_step((None,) + got[1:], (None,) + ref[1:], 0.0)
    return judge(layer_name, run)


def probe_float32(case: Case, seed: int = 0) -> tuple[str, str]:
    """float32 x (float64 parameters): float32 y and dx close to the float64 answer."""
    layer_name = _who(case.make(np.float64))
    x = example_input(case, np.random.default_rng(seed))
    if case.ids:
        return "correct", "ids have no float dtype"

    def run():
        ref = _step(case, x, _dy)
        layer = case.make(np.float64)
        y = output(layer.forward(x.astype(np.float32)))
        dx = layer.backward(_dy(y).astype(np.float32))
        return (y.dtype == np.float32 and dx.dtype == np.float32 and _close(y, ref[0], 1e-4)
                and _close(dx, ref[1], 1e-4))
    return judge(layer_name, run)


BAD_DTYPES = {
    "float16": lambda x: x.astype(np.float16),
    "int64": lambda x: np.round(x).astype(np.int64),
    "uint8": lambda x: np.abs(np.round(x)).astype(np.uint8),
    "bool": lambda x: x > 0,
    "complex": lambda x: x.astype(np.complex128),
    "object": lambda x: x.astype(object),
    "list": lambda x: x.tolist(),
    "scalar": lambda x: 1.0,
}


def probe_bad_x(case: Case, kind: str) -> tuple[str, str]:
    """x of a dtype or type the layer does not take: a clear error (int ids for Embedding)."""
    layer = case.make(np.float64)
    x = example_input(case, np.random.default_rng(0), shape=case.shape)
    if case.ids:
        if kind in ("int64", "uint8"):
            return "correct", "integer ids are the layer's input"
        x = x.astype(np.float64) + 0.5           # float ids: refused
    bad = BAD_DTYPES[kind](x)

    def run():
        layer.forward(bad)
        return False                            # accepted: no right answer exists
    return judge(_who(layer), run)


def probe_bad_dy(case: Case, kind: str) -> tuple[str, str]:
    layer = case.make(np.float64)
    y = output(layer.forward(example_input(case, np.random.default_rng(0))))
    bad = BAD_DTYPES[kind](np.asarray(y)) if kind in BAD_DTYPES else {
        "extra axis": lambda a: a[None], "broadcastable": lambda a: a[:1],
        "transposed": lambda a: a.T if a.ndim > 1 and a.shape != a.T.shape else a[..., None],
    }[kind](np.asarray(y))

    def run():
        layer.backward(bad)
        return False
    return judge(_who(layer), run)


def probe_empty(case: Case, axis: int) -> tuple[str, str]:
    """An empty axis: empty outputs of the right shape, or a clear error."""
    layer = case.make(np.float64)
    shape = list(case.shape)
    shape[axis] = 0
    x = example_input(case, np.random.default_rng(0), shape=tuple(shape))
    if case.name.startswith("BatchNorm"):
        layer.eval()

    def run():
        y = output(layer.forward(x))
        dx = layer.backward(np.zeros(y.shape))
        return y.size == 0 and (dx is None or (dx.shape == x.shape))
    return judge(_who(layer), run)


# -- extreme values against PyTorch --------------------------------------------------------------

def _torch_reference(case: Case, layer, x):
    """PyTorch's output for the layers with a one-line equivalent, else None."""
    import torch
    import torch.nn.functional as F
    t = torch.from_numpy(np.array(x))
    name = case.name
    simple = {"ReLU": F.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
              "LeakyReLU": lambda v: F.leaky_relu(v, 0.1), "Softmax": lambda v: F.softmax(v, -1),
              "LogSoftmax": lambda v: F.log_softmax(v, 1), "MaxPool2D": lambda v: F.max_pool2d(v, 2),
              "AvgPool2D": lambda v: F.avg_pool2d(v, 2, padding=1),
              "GlobalAvgPool": lambda v: v.mean(dim=(2, 3)),
              "Flatten": lambda v: v.flatten(1), "Identity": lambda v: v}
    if name in simple:
        return simple[name](t).numpy()
    w = {k: torch.from_numpy(np.array(v)) for k, v in layer.params.items()}
    if name.startswith("Linear"):
        return F.linear(t, w["weight"], w["bias"]).numpy()
    if name.startswith("Conv2DWinograd"):
        return F.conv2d(t, w["weight"], w["bias"], padding=layer.padding).numpy()
    if name == "Conv2D":
        return F.conv2d(t, w["weight"], w["bias"], stride=2).numpy()
    return None


EXTREMES = {"1e30": 1e30, "-1e30": -1e30, "nan": math.nan, "inf": math.inf, "-inf": -math.inf,
            "1e-300": 1e-300}


def probe_extreme(case: Case, label: str, dtype=np.float32) -> tuple[str, str] | None:
    """One value of x set to an extreme: the same y as PyTorch (NaN where it has NaN), or a
    clear error. None when PyTorch has no one-line equivalent of the layer."""
    if case.ids:
        return None
    layer = case.make(dtype)
    x = example_input(case, np.random.default_rng(0), dtype)
    x.flat[x.size // 3] = EXTREMES[label]
    ref = _torch_reference(case, layer, x)
    if ref is None:
        return None

    def run():
        y = output(layer.forward(x))
        same_nan = np.array_equal(np.isnan(y), np.isnan(ref))
        same_inf = np.array_equal(np.isposinf(y), np.isposinf(ref)) and \
            np.array_equal(np.isneginf(y), np.isneginf(ref))
        finite = np.isfinite(ref) & np.isfinite(y)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        scale = np.maximum(1.0, np.abs(ref))
        with np.errstate(invalid="ignore"):
            err = np.abs(y - ref)[finite]
        return same_nan and same_inf and bool(np.all(err <= tol * scale[finite]))
    return judge(_who(layer), run)


# -- hyperparameters ------------------------------------------------------------------------------

HYPER = [   # (class name, build(value), parameter, values that are valid)
    ("Linear", lambda v: lk.Linear(v, 4), "in_features", ()),
    ("Linear", lambda v: lk.Linear(3, v), "out_features", ()),
    ("Conv2D", lambda v: lk.Conv2D(2, 3, v), "kernel_size", ()),
    ("Conv2D", lambda v: lk.Conv2D(2, 3, 3, stride=v), "stride", ()),
    ("Conv2D", lambda v: lk.Conv2D(2, 3, 3, padding=v), "padding", (0,)),
    ("Conv2D", lambda v: lk.Conv2D(2, 3, 3, dilation=v), "dilation", ()),
    ("ConvTranspose2D", lambda v: lk.ConvTranspose2D(2, 3, 3, stride=v), "stride", ()),
    ("ConvTranspose2D", lambda v: lk.ConvTranspose2D(2, 3, 3, stride=2, output_padding=v),
     "output_padding", (0,)),
    ("MaxPool2D", lambda v: lk.MaxPool2D(v), "kernel_size", ()),
    ("MaxPool2D", lambda v: lk.MaxPool2D(2, stride=v), "stride", ()),
    ("MaxPool2D", lambda v: lk.MaxPool2D(3, padding=v), "padding", (0,)),
    ("AvgPool2D", lambda v: lk.AvgPool2D(2, padding=v), "padding", (0,)),
    ("Dropout", lambda v: lk.Dropout(v), "p", (0,)),
    ("LeakyReLU", lambda v: lk.LeakyReLU(v), "negative_slope", (0,)),
    ("BatchNorm1D", lambda v: lk.BatchNorm1D(3, eps=v), "eps", ()),
    ("BatchNorm1D", lambda v: lk.BatchNorm1D(3, momentum=v), "momentum", (0,)),
    ("LSTM", lambda v: lk.LSTM(3, v), "hidden_size", ()),
    ("LSTM", lambda v: lk.LSTM(3, 4, forget_bias=v), "forget_bias", (0, -1)),
    ("RNN", lambda v: lk.RNN(3, 4, nonlinearity=v), "nonlinearity", ()),
    ("Embedding", lambda v: lk.Embedding(5, 4, padding_idx=v), "padding_idx", (0, -1)),
    ("ChannelMaxPool", lambda v: lk.ChannelMaxPool(v), "pool_size", ()),
    ("Flatten", lambda v: lk.Flatten(v), "start_dim", (0,)),
    ("Softmax", lambda v: lk.Softmax(v), "axis", (0, -1)),
    ("Concat", lambda v: lk.Concat(lk.Identity(), axis=v), "axis", (0, -1)),
    ("MaxUnpool2D", lambda v: lk.MaxUnpool2D(v), "kernel_size", ()),
    ("CrossEntropy", lambda v: lk.CrossEntropy(reduction=v), "reduction", ()),
]

BAD_VALUES = {"0": 0, "-1": -1, "1.5": 1.5, "'2'": "2", "True": True, "inf": math.inf,
              "nan": math.nan, "10**30": 10 ** 30, "complex": 1j, "[2]": [2]}


HYPER_INPUTS = {"Linear": (2, 3), "Conv2D": (1, 2, 6, 6), "ConvTranspose2D": (1, 2, 3, 3),
                "MaxPool2D": (1, 2, 6, 6), "AvgPool2D": (1, 2, 6, 6), "Dropout": (2, 3),
                "LeakyReLU": (2, 3), "BatchNorm1D": (4, 3), "LSTM": (2, 4, 3), "RNN": (2, 4, 3),
                "ChannelMaxPool": (2, 4, 3), "Flatten": (2, 3, 2), "Softmax": (2, 3),
                "Concat": (2, 3)}


def _stored_as_given(layer, param, value) -> bool:
    """Whether the layer keeps ``value`` as given (an int n may become (n, n)): no truncation."""
    stored = getattr(layer, param, value)
    if isinstance(value, str) or not isinstance(value, (int, float)):
        return True
    vals = stored if isinstance(stored, tuple) else (stored,)
    return all(math.isclose(v, value) or (math.isnan(value) and v != v) for v in vals)


def probe_hyper(index: int, value) -> tuple[str, str]:
    """A constructor given an unusual value: a clear error naming the class, or a layer that
    keeps the value as given (nothing truncated) and whose forward works or raises clearly."""
    name, build, param, valid = HYPER[index]

    def run():
        layer = build(value)
        if value not in valid and not _stored_as_given(layer, param, value):
            return False
        if name in HYPER_INPUTS:
            x = np.random.default_rng(0).standard_normal(HYPER_INPUTS[name])
            y = output(layer.forward(x))
            return bool(np.all(np.isfinite(y)))
        return True
    return judge(name, run)


# -- losses ---------------------------------------------------------------------------------------

def _loss_inputs(name: str, rng, n=4, k=3):
    pred = rng.standard_normal((n, k))
    if name == "CrossEntropy":
        return pred, rng.integers(0, k, n)
    if name == "MSE":
        return pred, rng.standard_normal((n, k))
    return pred, (rng.random((n, k)) > 0.5).astype(np.float64)


LOSSES = {"CrossEntropy": lk.CrossEntropy, "MSE": lk.MSE, "BCEWithLogits": lk.BCEWithLogits}


def probe_loss(name: str, variant: str) -> tuple[str, str]:
    """A loss given pred/target in a variant: the float64 contiguous answer, or a clear error."""
    pred, target = _loss_inputs(name, np.random.default_rng(0))

    def value_and_grad(p, t):
        loss = LOSSES[name]()
        return loss.forward(p, t), np.array(loss.backward(), dtype=np.float64)
    if variant in LAYOUTS:
        def run():
            p, t = LAYOUTS[variant](pred), LAYOUTS[variant](target)
            ref = value_and_grad(np.ascontiguousarray(p), np.ascontiguousarray(t))
            got = value_and_grad(p, t)
            return math.isclose(got[0], ref[0], rel_tol=1e-12) and _close(got[1], ref[1], 1e-12)
        return judge(name, run)
    bad = {
        "pred complex": (pred.astype(complex), target), "pred int": (pred.astype(int), target),
        "pred list": (pred.tolist(), target), "pred nan": (np.where(pred > 1, np.nan, pred), target),
        "empty": (pred[:0], target[:0]), "target shape": (pred, target[:-1]),
        "target object": (pred, target.astype(object)), "pred 0-d": (np.float64(1.0), target),
        "target complex": (pred, target.astype(complex)),
    }[variant]

    def run():
        LOSSES[name]().forward(*bad)
        return False
    return judge(name, run)


LOSS_VARIANTS = list(LAYOUTS) + ["pred complex", "pred int", "pred list", "pred nan", "empty",
                                 "target shape", "target object", "pred 0-d", "target complex"]


def corpus():
    """Every probe of the corpus as (label, thunk returning (outcome, detail) or None)."""
    for case in CASES:
        for layout in LAYOUTS:
            yield f"{case.name} layout {layout}", lambda c=case, l=layout: probe_layout(c, l)
        yield f"{case.name} float32", lambda c=case: probe_float32(c)
        yield f"{case.name} x changed after forward", lambda c=case: probe_changed_after_forward(c)
        for kind in BAD_DTYPES:
            yield f"{case.name} x {kind}", lambda c=case, k=kind: probe_bad_x(c, k)
        for kind in list(BAD_DTYPES) + ["extra axis", "broadcastable", "transposed"]:
            yield f"{case.name} dy {kind}", lambda c=case, k=kind: probe_bad_dy(c, k)
        for axis in range(len(case.shape)):
            yield f"{case.name} empty axis {axis}", lambda c=case, a=axis: probe_empty(c, a)
        for label in EXTREMES:
            yield f"{case.name} extreme {label}", lambda c=case, l=label: probe_extreme(c, l)
    for i, (name, _, param, _) in enumerate(HYPER):
        for label in BAD_VALUES:
            yield f"{name}({param}={label})", lambda i=i, l=label: probe_hyper(i, BAD_VALUES[l])
    for name in LOSSES:
        for variant in LOSS_VARIANTS:
            yield f"{name} {variant}", lambda n=name, v=variant: probe_loss(n, v)
