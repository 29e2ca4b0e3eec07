"""What every model builder shares: the JSON spec, the model base class, argument checks and
sampling from a distribution over ids."""

from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np

from ..grad_mode import no_grad
from ..layers.containers import Container
from ..validation import check_array, check_ids, float_dtype, positive_int


def check_seed(who: str, seed):
    """``seed`` must be None or an int: the spec is JSON, a Generator cannot be written down."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{who}: seed must be None or a non-negative integer (it is stored in "
                         f"the JSON spec), got {seed!r}")
    return int(seed)


def sub_seed(seed, i: int):
    """The seed of the i-th layer of a model: seed + i (None stays None)."""
    return None if seed is None else seed + i


def dtype_name(who: str, dtype) -> str:
    return float_dtype(dtype, who).name


def check_temperature(who: str, temperature) -> float:
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
            or not math.isfinite(temperature) or temperature <= 0):
        raise ValueError(f"{who}: temperature must be a finite number > 0 (it divides the "
                         f"logits; a small value such as 0.05 is nearly greedy), got "
                         f"{temperature!r}")
    return float(temperature)


def check_length(who: str, length) -> int:
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise ValueError(f"{who}: length must be a non-negative integer, got {length!r}")
    return int(length)


def die_weights(log_weights: np.ndarray, temperature: float, top_k) -> np.ndarray:
    """The unnormalised weights exp(log_weights / temperature − max) (float64), zero outside
    the top_k largest (all kept when top_k is None): the die :func:`weighted_die` rolls."""
    z = np.asarray(log_weights, dtype=np.float64) / temperature
    if top_k is not None and top_k < z.size:
        keep = np.argpartition(-z, top_k - 1)[:top_k]
        masked = np.full_like(z, -np.inf)
        masked[keep] = z[keep]
        z = masked
    return np.exp(z - np.max(z))


def weighted_die(log_weights: np.ndarray, temperature: float, top_k, rng, *, weights=None) -> int:
    """Draw one index with probability ∝ exp(log_weights / temperature), among the top_k largest
    (all when top_k is None). One uniform draw u ~ U[0, 1) from ``rng``, inverted through the
    cumulative distribution: the same generator state gives the same index. ``weights``: the
    :func:`die_weights` of these arguments when the caller has them already."""
    p = die_weights(log_weights, temperature, top_k) if weights is None else weights
    cdf = np.cumsum(p)
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), p.size - 1))


class HasSpec:
    """Mixin: the JSON spec, ``astype`` keeping the spec's dtype in step, and a one-line repr."""

    builder_name = ""

    def _record(self, **kwargs) -> None:
        self.spec = {"builder": self.builder_name, "kwargs": kwargs}

    def astype(self, dtype):
        dt = float_dtype(dtype, type(self).__name__)
        super().astype(dt)
        self.spec["kwargs"]["dtype"] = dt.name
        return self


class Model(HasSpec, Container):
    """A model of named children (not a plain chain): ``_children`` is a list of (label, layer)."""

    def _named_children(self) -> list:
        return self._children

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.spec["kwargs"].items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    @contextlib.contextmanager
    def _caches_kept(self):
        """Run inference (sampling, decoding) under :func:`layerkit.no_grad` without disturbing
        a pending backward: every layer's cache below the model (nested ones too) and its own
        are restored afterwards."""
        keys = ("_cache_value", "_cache_thread")
        saved = [(layer.__dict__, {k: layer.__dict__.get(k) for k in keys})
                 for layer in _descendants(self) + [self]]
        try:
            with no_grad():
                yield
        finally:        # as it was, thread and all (assigning _cache would record this thread)
            for state, cache in saved:
                state.update(cache)


def _descendants(container) -> list:
    """Every layer below ``container``: its children, theirs (inside Sequential, ...), ..."""
    out = []
    for _, child in container._named_children():
        out.append(child)
        if isinstance(child, Container):
            out += _descendants(child)
    return out


def sizes(who: str, **values) -> tuple:
    """Each keyword's value checked as a positive int, in the order given."""
    return tuple(positive_int(who, name, v) for name, v in values.items())


def check_batch_of_sequences(who: str, ids, name: str, axis: str, vocab_size: int, lengths,
                             lengths_name: str) -> None:
    """ids (N, axis) with axis >= 1 and values in [0, vocab_size); lengths, if given, (N,) ints."""
    check_ids(who, ids, ("N", axis), name, vocab_size)
    if ids.shape[1] < 1:
        raise ValueError(f"{who}: expected {name} of shape (N, {axis}) with {axis} >= 1, got "
                         f"{ids.shape}")
    if lengths is not None:
        check_array(who, lengths, (ids.shape[0],), name=lengths_name, kind="int")
