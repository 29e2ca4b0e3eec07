"""Course formats adapted *into* the Layer contract, so the one checker checks them unchanged.

Three formats that homework is written in, each wrapped by a class that offers ``forward``,
``backward``, ``params``, ``grads``, ``zero_grad``, ``input_names`` (the student's argument names,
in the order of the inputs) and a ``repr`` made of the student's own names:

- :class:`FunctionPair` (``foo_forward(x, w, b, conv_param) -> (out_1, ..., out_k, cache)`` and
  ``foo_backward(dout_1, ..., dout_k, cache) -> (dx, dw, db)``): every array argument is an input
  of the adapter, the gradients of the floating ones come back from ``backward`` in their order.
- :class:`LossFunction` (``softmax_loss(x, y) -> (loss, dx)``): y = loss, a 0-d array, and
  ``backward(δ) = δ · dx``.
- :class:`AttributeLayer` (parameters are array attributes ``W`` with a gradient attribute
  ``dLdW`` or ``dW`` written by ``backward``, also on sub-objects such as ``self.conv.W``): the
  adapter accumulates the gradient the student assigns, so it presents ``grads`` that add up.

:func:`as_layer` picks the adapter for an object (and returns a Layer-contract object as it is).
Problems the adapter finds while running (a gradient of the wrong shape) are collected in
``adapter.problems`` as :class:`~layerkit.check.report.Problem`; notes the student should see
(a gradient reshaped, arrays without a gradient) in ``adapter.notes``.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np

from .report import Problem

GRADIENT_PREFIXES = ("dLd", "d")      # W -> dLdW, then dW
FORMATS = {"function pair": "FunctionPair", "loss function": "LossFunction",
           "attribute layer": "AttributeLayer", "layer contract": None}


NO_GRAD_HINT = ("; an array it returns no gradient for (the data X of a loss in W) is not "
                "an input: pass it as fixed (--no-grad NAME on the command line)")


class AdapterError(ValueError):
    """The student's function or class does not fit the format it was taken for."""


def _is_float_array(v) -> bool:
    return isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating)


def _as_tuple(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _GlobalSeed:
    """Run a call with the global ``np.random`` state at a fixed seed, and give the caller's
    state back afterwards: code that draws from ``np.random`` (dropout masks, initial weights)
    draws the same numbers at every call."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.saved = np.random.get_state()
        np.random.seed(self.seed)

    def __exit__(self, *exc):
        np.random.set_state(self.saved)


class _Adapter:
    """What the three adapters share: the contract's dicts, zero_grad, problems and notes."""

    format = ""

    def __init__(self, seed: int):
        self.params, self.grads = {}, {}
        self.problems: list = []
        self.notes: list = []
        self._seed = _GlobalSeed(seed)

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g[...] = 0

    def _bind(self, fn, arrays: dict, fixed: dict | None) -> None:
        """``fixed``, ``input_names`` (the arrays in the order of fn's arguments) and
        ``inputs`` for a function called as ``fn(**arrays, **fixed)``."""
        self.fixed = dict(fixed or {})
        order = _split_signature(fn, arrays, self.fixed)
        self.input_names = tuple(n for n in order if n in arrays) + \
            tuple(n for n in arrays if n not in order)
        self.inputs = tuple(arrays[n] for n in self.input_names)

    def _problem(self, pattern: str, message: str) -> None:
        if message not in self.problems:
            self.problems.append(Problem(pattern, message))

    def _note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)


def _split_signature(fn, arrays: dict, fixed: dict) -> list:
    """The parameter names of ``fn`` in order; raise AdapterError for a name of ``arrays`` or
    ``fixed`` it does not take, or a required one that is given neither."""
    sig = inspect.signature(fn)
    names = list(sig.parameters)
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [k for k in list(arrays) + list(fixed) if k not in names and not takes_kwargs]
    if unknown:
        raise AdapterError(f"{fn.__name__}{sig} takes no argument {', '.join(unknown)}")
    missing = [n for n, p in sig.parameters.items()
               if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               and n not in arrays and n not in fixed]
    if missing:
        raise AdapterError(f"{fn.__name__}{sig}: no value for {', '.join(missing)}")
    return names


class FunctionPair(_Adapter):
    """``forward(*arrays, **fixed) -> (out_1, ..., out_k, cache)`` with its partner
    ``backward(dout_1, ..., dout_k, cache) -> gradients of the floating arrays, in order`` as a
    Layer: the inputs are the arrays (in the forward's argument order, integer ones such as labels
    passed through), ``fixed`` the other arguments (a deep copy at each call, so a dict that
    forward writes into does not carry over), no parameters."""

    format = "function pair"

    def __init__(self, forward, backward, arrays: dict, fixed: dict | None = None, *,
                 seed: int = 0):
        super().__init__(seed)
        self.forward_fn, self.backward_fn = forward, backward
        self._bind(forward, arrays, fixed)
        self.callable_names = {"forward": forward.__name__, "backward": backward.__name__}
        self._cache, self._n_out = None, None

    def _call_forward(self, inputs) -> tuple:
        kwargs = dict(zip(self.input_names, inputs), **copy.deepcopy(self.fixed))
        with self._seed:
            return _as_tuple(self.forward_fn(**kwargs))

    def forward(self, *inputs):
        name = self.forward_fn.__name__
        out = self._call_forward(inputs)
        if len(out) < 2:
            raise AdapterError(f"{name} returned {len(out)} value(s); a forward function "
                               "returns its output(s) and then the cache: (out, cache)")
        *ys, self._cache = out
        if any(y is None for y in ys):
            raise NotImplementedError(f"{name} returned None as its output: write the forward "
                                      "pass (return out, cache)")
        self._n_out = len(ys)
        ys = [np.asarray(y) for y in ys]
        return ys[0] if len(ys) == 1 else tuple(ys)

    def backward(self, *douts):
        if self._n_out is None:
            raise RuntimeError(f"{self.backward_fn.__name__} called before "
                               f"{self.forward_fn.__name__}")
        grads = _as_tuple(self.backward_fn(*douts, self._cache))
        wanted = [n for n, x in zip(self.input_names, self.inputs)
                  if np.issubdtype(np.asarray(x).dtype, np.floating)]
        name = self.backward_fn.__name__
        if all(g is None for g in grads):
            raise NotImplementedError(f"{name} returned None: write the backward pass (return "
                                      + ", ".join("d" + n for n in wanted) + ")")
        if len(grads) != len(wanted):
            raise AdapterError(
                f"{name} returned {len(grads)} gradient(s), but {self.forward_fn.__name__} has "
                f"{len(wanted)} floating array argument(s) ({', '.join(wanted)}): return one "
                f"gradient per argument, in their order: {', '.join('d' + n for n in wanted)}"
                f"{NO_GRAD_HINT}")
        none = [w for w, g in zip(wanted, grads) if g is None]
        if none:
            raise AdapterError(f"{name} returned None for {', '.join('d' + n for n in none)}")
        return grads

    def __repr__(self) -> str:
        args = ", ".join(list(self.input_names)
                         + [f"{k}={_short(v)}" for k, v in self.fixed.items()])
        return f"{self.forward_fn.__name__}({args}) / {self.backward_fn.__name__}"


class LossFunction(_Adapter):
    """``loss_fn(*arrays, **fixed) -> (loss, grad_1, ...)``, one gradient per floating array
    argument, as a Layer: y = loss as a 0-d array, and ``backward(δ) = (δ·grad_1, ...)``."""

    format = "loss function"

    def __init__(self, loss_fn, arrays: dict, fixed: dict | None = None, *, seed: int = 0):
        super().__init__(seed)
        self.loss_fn = loss_fn
        self._bind(loss_fn, arrays, fixed)
        self.callable_names = {"forward": loss_fn.__name__, "backward": loss_fn.__name__}
        self._grads = None

    def forward(self, *inputs):
        name = self.loss_fn.__name__
        kwargs = dict(zip(self.input_names, inputs), **copy.deepcopy(self.fixed))
        with self._seed:
            out = _as_tuple(self.loss_fn(**kwargs))
        wanted = [n for n, x in zip(self.input_names, inputs)
                  if np.issubdtype(np.asarray(x).dtype, np.floating)]
        if out[0] is None:
            raise NotImplementedError(f"{name} returned None as the loss: write it")
        if len(out) != 1 + len(wanted):
            raise AdapterError(
                f"{name} returned {len(out)} value(s); a loss function returns the loss and "
                f"then one gradient per floating array argument: (loss, "
                f"{', '.join('d' + n for n in wanted)}){NO_GRAD_HINT}")
        loss = np.asarray(out[0])
        if loss.size != 1:
            raise AdapterError(f"{name} returned a loss of shape {loss.shape}; the loss is one "
                               "number")
        self._grads = out[1:]
        return loss.reshape(())

    def backward(self, dy):
        if self._grads is None:
            raise RuntimeError(f"backward of {self.loss_fn.__name__} before its forward")
        return tuple(np.asarray(dy) * np.asarray(g) for g in self._grads)

    def __repr__(self) -> str:
        args = ", ".join(list(self.input_names)
                         + [f"{k}={_short(v)}" for k, v in self.fixed.items()])
        return f"{self.loss_fn.__name__}({args})"


# -- attribute-style classes ---------------------------------------------------------------------

def _children(obj):
    """(name, value) of the attributes of ``obj`` that may hold parameters: arrays, objects
    with their own attributes, and lists/tuples of such objects (``self.layers[i]``)."""
    for name, value in vars(obj).items():
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if hasattr(item, "__dict__") and not isinstance(item, type):
                    yield f"{name}.{i}", item
        else:
            yield name, value


def _array_attributes(obj, prefix="", seen=None, depth=4) -> dict:
    """{dotted path: (owner, attribute, array)} for every floating array attribute of ``obj``
    and of the objects it holds (not modules, classes or functions), at most ``depth`` deep."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth < 0:
        return {}
    seen.add(id(obj))
    found = {}
    for name, value in _children(obj):
        if _is_float_array(value):
            found[prefix + name] = (obj, name, value)
        elif hasattr(value, "__dict__") and not (inspect.ismodule(value) or inspect.isroutine(value)
                                                  or isinstance(value, type)):
            found.update(_array_attributes(value, f"{prefix}{name}.", seen, depth - 1))
    return found


def _owner_and_attr(root, path: str):
    owner, _, attr = path.rpartition(".")
    obj = root
    for part in owner.split(".") if owner else ():
        obj = obj[int(part)] if part.isdigit() and isinstance(obj, (list, tuple)) else \
            getattr(obj, part)
    return obj, attr


class AttributeLayer(_Adapter):
    """An object with ``forward(A) -> Z`` and ``backward(dLdZ) -> dLdA`` whose parameters are
    array attributes ``P`` (also on sub-objects: ``conv1d_stride1.W``) and whose backward leaves
    the gradient in an attribute ``dLdP`` or ``dP``, as a Layer.

    The parameters are found by one forward and backward on ``inputs`` (``discover``): an array
    attribute that existed before forward is a parameter when it is still the same array after
    backward (a cache that forward rebinds is not) and an attribute ``dLdP`` or ``dP`` exists
    after backward. The adapter's ``grads`` are its own arrays: its
    backward adds the gradient the student's backward assigned, so assignment (the course
    convention) presents the accumulating contract. A gradient with the parameter's elements in
    a shape that differs only in size-1 axes ((C,) for a (1, C) parameter) is reshaped, with a
    note; any other shape is a "wrong shape" problem (that gradient is left at zero).

    ``batch_mean``: the course averages parameter gradients over the batch; they are multiplied
    by the batch size N (the first axis of the first input) before they are checked.
    """

    format = "attribute layer"

    def __init__(self, obj, inputs=None, *, forward_kwargs: dict | None = None,
                 batch_mean: bool = False, dtype=np.float64, seed: int = 0,
                 name: str | None = None):
        super().__init__(seed)
        self.obj, self.batch_mean, self.dtype = obj, batch_mean, np.dtype(dtype)
        cls = type(obj)
        self.name = name or cls.__name__
        self.callable_names = {"forward": f"{cls.__name__}.forward",
                               "backward": f"{cls.__name__}.backward"}
        try:
            sig = inspect.signature(obj.forward)
            self.input_names = tuple(n for n, p in sig.parameters.items()
                                     if p.default is p.empty
                                     and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
        except (TypeError, ValueError):
            self.input_names = ()
        self.grad_names: dict = {}        # parameter path -> gradient attribute path
        self.wrong_shape: dict = {}       # parameter path -> message (its grads stay zero)
        self.inputs: tuple = ()
        self._batch = None
        if inputs is not None:
            self.discover(inputs, forward_kwargs)

    def discover(self, inputs, forward_kwargs=None) -> None:
        """Find the parameters by one forward and backward on ``inputs`` (then zero_grad)."""
        inputs = [np.asarray(x, dtype=self.dtype) if _is_float_array(np.asarray(x)) else x
                  for x in _as_tuple(inputs)]
        candidates = _array_attributes(self.obj)
        for path, (owner, attr, value) in candidates.items():
            if value.dtype != self.dtype:         # the checker perturbs params in its dtype
                setattr(owner, attr, value.astype(self.dtype))
        candidates = _array_attributes(self.obj)
        self.inputs = tuple(inputs)
        with self._seed:
            y = self.obj.forward(*inputs, **(forward_kwargs or {}))
        if y is None:
            raise NotImplementedError(f"{self.name}.forward returned None: write it "
                                      "(return the output)")
        rng = np.random.default_rng(0)
        dys = [rng.standard_normal(np.shape(v)) for v in _as_tuple(y)]
        self.obj.backward(*dys)
        after = _array_attributes(self.obj)
        grads = {}
        for path, (_, _, value) in candidates.items():
            if path not in after or after[path][2] is not value:
                continue                # rebound by forward or backward: a cache, not a weight
            head, _, attr = path.rpartition(".")
            g_path = next((g for g in (head + "." * bool(head) + prefix + attr
                                       for prefix in GRADIENT_PREFIXES) if g in after), None)
            if g_path is not None:
                grads[path] = g_path
        self.grad_names = {p: g for p, g in grads.items() if p not in grads.values()}
        unchecked = [p for p in candidates if p not in self.grad_names
                     and p not in self.grad_names.values()]
        if not self.grad_names and unchecked:
            self._problem("missing gradient", (
                f"{self.name}: after backward there is no gradient attribute for any of its "
                f"arrays ({', '.join(unchecked)}); the gradient of an attribute P is read from "
                f"dLdP or dP (e.g. {_gradient_hint(unchecked[0])}), which backward must set"))
        elif unchecked:
            self._note(f"not checked (no dLd<name> or d<name> after backward): "
                       f"{', '.join(unchecked)}")
        self.params = {p: self._attr(p) for p in self.grad_names}
        self.grads = {p: np.zeros_like(v) for p, v in self.params.items()}

    def __getattr__(self, name):
        """Gradients of initial states (``dh0`` for a float keyword argument ``h0``) are the
        student's object's attributes."""
        if name.startswith("d") and "obj" in vars(self):
            return getattr(self.obj, name)
        raise AttributeError(name)

    @property
    def batch_size(self):
        """N of the last forward (the first axis of its first input), None before."""
        return self._batch

    def _attr(self, path):
        owner, attr = _owner_and_attr(self.obj, path)
        return getattr(owner, attr)

    def forward(self, *inputs, **kwargs):
        self._batch = np.shape(inputs[0])[0] if inputs and np.ndim(inputs[0]) else None
        with self._seed:
            y = self.obj.forward(*inputs, **kwargs)
        if y is None:
            raise NotImplementedError(f"{self.name}.forward returned None: write it")
        return y

    def backward(self, *dys):
        dx = self.obj.backward(*dys)
        if dx is None and self.input_names:
            raise NotImplementedError(f"{self.name}.backward returned None: return dLdA")
        for path, g_path in self.grad_names.items():
            self._accumulate(path, g_path)
        return dx

    def _accumulate(self, path: str, g_path: str) -> None:
        p = self.params[path]
        g = self._attr(g_path)
        if g is None:
            self._problem("missing gradient", f"{self.name}.backward did not set {g_path}")
            return
        g = np.asarray(g, dtype=np.float64)
        if g.shape != p.shape:
            if g.size == p.size and [s for s in g.shape if s != 1] == \
                    [s for s in p.shape if s != 1]:
                try:
                    step = np.broadcast_shapes(p.shape, g.shape)
                except ValueError:
                    step = p.shape              # does not broadcast: nothing more to say
                self._note(f"{g_path} has shape {g.shape}, {path} has {p.shape}: checked after "
                           f"reshaping (the same elements)" + (
                               f"; an update {path} -= lr * {g_path} would broadcast to "
                               f"{step}" if step != p.shape else ""))
                g = g.reshape(p.shape)
            else:
                hint = f" (the shape of {path} transposed: write dLdZ.T @ A for W of shape " \
                       "(out, in))" if g.shape == p.shape[::-1] else ""
                message = f"{g_path} has shape {g.shape}, but {path} has {p.shape}{hint}"
                self.wrong_shape[path] = message
                self._problem("wrong shape", message)
                return
        if self.batch_mean and self._batch:
            g = g * self._batch
        self.grads[path] += g

    def __repr__(self) -> str:
        return self.name


def _gradient_hint(path: str) -> str:
    head, _, attr = path.rpartition(".")
    return f"self.{head + '.' if head else ''}dLd{attr}"


def follows_contract(obj) -> bool:
    """True when ``obj`` has the Layer contract's forward, backward and the two dicts."""
    return (callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None))
            and isinstance(getattr(obj, "params", None), dict)
            and isinstance(getattr(obj, "grads", None), dict))


def backward_partner(forward, namespace: dict | None = None):
    """The function named like ``forward`` with "forward" replaced by "backward", looked up in
    the namespace where ``forward`` is defined (or ``namespace``); None when there is none."""
    if "forward" not in forward.__name__:
        return None
    name = forward.__name__.replace("forward", "backward")
    if namespace is None:        # the globals it was defined in (a module, a notebook, exec)
        namespace = getattr(forward, "__globals__", None) or getattr(
            inspect.getmodule(forward), "__dict__", {})
    fn = namespace.get(name)
    return fn if callable(fn) else None


def as_layer(obj, inputs=None, *, backward=None, arrays: dict | None = None,
             fixed: dict | None = None, forward_kwargs: dict | None = None,
             batch_mean: bool = False, dtype=np.float64, seed: int = 0, name: str | None = None):
    """The object as something :func:`~layerkit.check.gradcheck` checks.

    - An object that follows the Layer contract is returned as it is.
    - A function: with a backward partner (``backward``, else the function named with "forward"
      replaced by "backward") a :class:`FunctionPair`, without one a :class:`LossFunction`.
      Its array arguments are ``arrays`` (name -> array), or ``inputs`` given in the order of
      its arguments; other arguments are ``fixed``.
    - Any other object with ``forward`` and ``backward``: an :class:`AttributeLayer`,
      whose parameters are discovered by one forward and backward on ``inputs``.

    >>> layer = as_layer(affine_forward, arrays={"x": x, "w": w, "b": b})
    >>> gradcheck(layer, layer.inputs)
    """
    if follows_contract(obj):
        return obj
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        if arrays is None:
            names = list(inspect.signature(obj).parameters)
            given = dict(zip(names, _as_tuple(inputs) if inputs is not None else ()))
            arrays = {k: v for k, v in given.items() if isinstance(v, np.ndarray)}
            fixed = {**{k: v for k, v in given.items() if k not in arrays}, **(fixed or {})}
        partner = backward or backward_partner(obj)
        if partner is None and "forward" in obj.__name__:
            raise AdapterError(
                f"{obj.__name__} has no backward partner: no function "
                f"{obj.__name__.replace('forward', 'backward')} next to it (name it with "
                "backward=...)")
        if partner is None:
            return LossFunction(obj, arrays, fixed, seed=seed)
        return FunctionPair(obj, partner, arrays, fixed, seed=seed)
    if callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None)):
        if inputs is None:
            raise AdapterError(f"{type(obj).__name__}: an attribute-style layer needs inputs to "
                               "find its parameters (as_layer(obj, inputs))")
        return AttributeLayer(obj, inputs, forward_kwargs=forward_kwargs, batch_mean=batch_mean,
                              dtype=dtype, seed=seed, name=name)
    raise AdapterError(f"{obj!r} is neither a function nor an object with forward and backward")


BATCH_MEAN_HINT = ("if your course averages parameter gradients over the batch, this is that "
                   "convention; --batch-mean (batch_mean=True) checks against it")


def name_report(report, layer, input_names=None):
    """Put what only the adapter knows into a report of ``layer``: the inputs named by
    ``input_names`` (default ``layer.input_names``) instead of x / inputs[i], the problems the
    adapter found while running, and for an attribute layer whose parameter gradient is scaled
    by exactly 1/N (N the batch) the batch-mean hint. Returns the report."""
    names = tuple(input_names if input_names is not None else
                  getattr(layer, "input_names", None) or ())
    params = set(getattr(layer, "params", {}) or {})
    if len(names) == 1:
        labels = {"x": names[0]}
    else:
        labels = {f"inputs[{i}]": n for i, n in enumerate(names)}
    labels = {old: new for old, new in labels.items() if old not in params}

    backward = getattr(layer, "callable_names", {}).get("backward")

    def relabel(text: str) -> str:
        if backward and not isinstance(layer, AttributeLayer):
            text = text.replace("returned by backward", f"returned by {backward}")
        for old, new in labels.items():
            if old == "x":
                text = text.replace("gradient of x ", f"gradient of {new} ") \
                    .replace("for x of shape", f"for {new} of shape")
            else:
                text = text.replace(old, new)
        return text

    inputs = set(names)
    for t in report.tensors:
        if t.name in labels and t.name not in params:
            t.name = labels[t.name]
            t.diagnosis = relabel(t.diagnosis)
        elif t.name in inputs and t.name not in params:       # already named by the checker
            t.diagnosis = relabel(t.diagnosis)
        elif isinstance(layer, AttributeLayer) and t.name in layer.wrong_shape:
            t.pattern, t.diagnosis = "wrong shape", layer.wrong_shape[t.name]
        elif isinstance(layer, AttributeLayer) and t.name in layer.grad_names:
            t.diagnosis = t.diagnosis.replace(f"grads[{t.name!r}]", layer.grad_names[t.name])
    report.problems = list({str(q): q for q in (
        Problem(getattr(p, "pattern", None), relabel(str(p))) for p in report.problems)}.values())
    for p in getattr(layer, "problems", ()):
        if str(p) not in report.problems:
            report.problems.append(p)
    n = getattr(layer, "batch_size", None) if isinstance(layer, AttributeLayer) else None
    if n and not layer.batch_mean:
        for t in report.tensors:
            if t.name in params and t.pattern == f"scaled by 1/{n}":
                t.diagnosis = t.diagnosis.rstrip(".") + f". The factor is 1/N for the batch of N = {n}: {BATCH_MEAN_HINT}."
    return report
