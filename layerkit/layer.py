"""The Layer base class: the contract every layer (built-in or a user's own) follows.

Contract
--------
- ``params`` and ``grads`` are dicts of ndarrays with the same keys and shapes.
- ``forward(x)`` computes ``y`` and keeps what ``backward`` needs in one small cache.
- ``backward(dy)`` returns ``dx = ∂⟨y, dy⟩/∂x`` and *accumulates* ``∂⟨y, dy⟩/∂params[k]`` into
  ``grads[k]``; ``zero_grad()`` resets the accumulators.
- ``train()`` / ``eval()`` switch behaviour of stochastic or batch-statistics layers.
- ``backward`` before ``forward`` raises ``RuntimeError``; ``backward`` validates dy (float32
  or float64, exactly the shape of forward's output) with :func:`layerkit.validation.check_dy`.
- What ``backward`` needs is independent of the caller's x: the built-in layers cache a mask
  or their output where the derivation allows it (ReLU, LeakyReLU, Sigmoid, Tanh, Softmax,
  Dropout, BatchNorm's x̂, max pooling's argmax), their own copy otherwise (Linear's x, the
  recurrent layers' time-major x, convolution columns or padded inputs), so changing x after
  ``forward`` does not change the gradients.
- Threads: ``forward`` in ``eval()`` mode may run from several threads at once on one layer.
  The cache is the layer's own, so ``backward`` must run in the thread whose ``forward`` wrote
  it: a forward of another thread in between (a forward/backward pair from two threads at once,
  which cannot be right) makes ``backward`` raise ``RuntimeError`` instead of using the other
  thread's cache, and so does a ``backward`` that starts while another thread's ``backward`` on
  the same layer is still running (both would add into ``grads`` at once). Train one model per
  thread (``copy.deepcopy``) to train in parallel.
- Inside ``with layerkit.no_grad():`` (:mod:`layerkit.grad_mode`) forwards keep no cache: the
  cache is replaced by a marker, and a ``backward`` after such a forward raises RuntimeError.
- ``needs_input_grad`` (True by default): when False, ``backward(dy)`` still accumulates every
  ``grads[k]`` exactly as with True, but may skip ∂⟨y, dy⟩/∂x and return None — for the first
  layer of a network, whose input is data. A layer that does not implement the skip ignores the
  flag and returns dx as always; a layer whose input has no gradient (integer ids) returns None.

Nothing numeric lives here; layers implement the math.
"""

from __future__ import annotations

import functools
import itertools
import threading

import numpy as np

from .grad_mode import grad_enabled
from .validation import check_dy, float_dtype

_THREAD_NUMBERS = itertools.count()


class _ThreadNumber(threading.local):
    """A number unique to each thread for the life of the process (``threading.get_ident`` is
    reused once a thread ends); threading.local runs __init__ again in each new thread."""

    def __init__(self):
        self.value = next(_THREAD_NUMBERS)


_THIS_THREAD = _ThreadNumber()

#: What a forward under layerkit.no_grad() leaves in place of its cache (assigning any cache
#: there stores this instead; a layer that skips building its cache assigns it directly).
NO_CACHE = object()


def _one_thread_at_a_time(backward):
    """Wrap a subclass's ``backward`` so that two threads cannot run it on one layer at once.

    ``dict.setdefault`` is atomic under the GIL, so exactly one thread claims the layer; the
    claim is a (thread, token) pair so that a nested call in the same thread (a subclass calling
    ``super().backward``) neither raises nor releases its caller's claim."""

    @functools.wraps(backward)
    def guarded(self, *args, **kwargs):
        state = self.__dict__
        claim = (_THIS_THREAD.value, object())
        owner = state.setdefault("_backward_claim", claim)
        if owner[0] != claim[0]:
            raise RuntimeError(
                    f"{self._who()}: backward called while another thread's backward on this "
                    f"layer is running; one layer cannot run forward/backward pairs from two "
                    f"threads at once: give each thread its own copy (copy.deepcopy)")
        try:
            return backward(self, *args, **kwargs)
        finally:
            if owner is claim:
                del state["_backward_claim"]

    guarded._one_thread_at_a_time = True
    return guarded


class Layer:
    """Base class for layers with handwritten ``forward`` and ``backward``.

    Subclasses implement ``forward`` and ``backward`` and describe their hyperparameters in
    ``extra_repr``. Parameters are registered with ``add_param`` so that ``grads`` always mirrors
    ``params``.

    Attributes
    ----------
    needs_input_grad : bool, default True
        False allows ``backward`` to skip ∂L/∂x and return None (the parameter gradients are
        unchanged); set it on an instance, e.g. ``conv.needs_input_grad = False``.
    """

    needs_input_grad: bool = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        backward = cls.__dict__.get("backward")
        if callable(backward) and not getattr(backward, "_one_thread_at_a_time", False):
            cls.backward = _one_thread_at_a_time(backward)

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True
        self._cache = None

    # -- parameters -------------------------------------------------------------------------
    @property
    def buffers(self) -> dict[str, np.ndarray]:
        """State that is not a parameter but changes the output (batch norm's running
        statistics), by name; checkpoints save and restore it. None by default."""
        return {}

    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register parameter ``name`` (and a zero gradient of the same shape and dtype)."""
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def zero_grad(self) -> None:
        """Set every accumulated parameter gradient to zero (in place)."""
        for g in self.grads.values():
            g[...] = 0

    def num_params(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.params.values()))

    def astype(self, dtype) -> "Layer":
        """Convert every parameter and gradient to ``dtype`` (float32 or float64); returns self."""
        dt = float_dtype(dtype, repr(self))
        for k in list(self.params):
            self.params[k] = np.ascontiguousarray(self.params[k], dtype=dt)
            self.grads[k] = np.ascontiguousarray(self.grads[k], dtype=dt)
        self._cache = None
        return self

    # -- modes ------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Layer":
        """Switch to training mode (``mode=False``: evaluation mode); returns self."""
        self.training = bool(mode)
        return self

    def eval(self) -> "Layer":
        """Switch to evaluation mode; returns self."""
        return self.train(False)

    # -- computation ------------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # The cache, with the thread that wrote it (see the module doc); subclasses just assign it.
    # Under layerkit.no_grad() a forward's cache is dropped and a marker kept in its place.
    @property
    def _cache(self):
        return self.__dict__.get("_cache_value")

    @_cache.setter
    def _cache(self, value) -> None:
        if value is not None and not grad_enabled():
            value = NO_CACHE
        self.__dict__["_cache_value"] = value
        self.__dict__["_cache_thread"] = _THIS_THREAD.value

    def saved(self):
        """The cache written by the last ``forward``; raises RuntimeError if there was none, or
        if another thread's forward wrote it (see the module doc)."""
        cache = self._cache
        if cache is not None and cache is not NO_CACHE and \
                self.__dict__["_cache_thread"] == _THIS_THREAD.value:
            return cache
        who = self._who()
        if cache is None:
            raise RuntimeError(f"{who}: backward called before forward")
        if cache is NO_CACHE and self.__dict__["_cache_thread"] == _THIS_THREAD.value:
            raise RuntimeError(f"{who}: backward after a forward under layerkit.no_grad(), "
                               f"which keeps nothing for backward: run the forward outside "
                               f"no_grad() to train")
        raise RuntimeError(
                f"{who}: backward in a thread other than the one whose forward it would use "
                f"(another thread ran forward on this layer in between); one layer cannot run "
                f"forward/backward pairs from two threads at once: give each thread its own "
                f"copy (copy.deepcopy). Forward alone in eval() mode is thread-safe")

    def _who(self) -> str:
        """The layer as error messages name it: its repr, or for containers its class."""
        who = repr(self)
        return type(self).__name__ if "\n" in who else who

    def check_dy(self, dy, shape: tuple) -> np.ndarray:
        """Validate the upstream gradient against the shape forward produced (dtype float32 or
        float64, exactly that shape): :func:`layerkit.validation.check_dy`."""
        return check_dy(self, dy, shape)        # the message formats self: its repr

    # -- description ------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """Hyperparameters as they would be written in the constructor call."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
