"""Containers: Sequential, Residual, Concat (and Identity, the trivial block)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..layer import Layer
from ..validation import check_array, check_dy


def check_child(owner: str, what: str, layer) -> None:
    """Raise TypeError if ``layer`` (``what`` of container ``owner``, e.g. ``"layer 1"``) lacks
    a part of the Layer contract: forward, backward, params, grads."""
    missing = [a for a in ("forward", "backward", "params", "grads") if not hasattr(layer, a)]
    if missing:
        raise TypeError(f"{owner}: {what} ({layer!r}) does not follow the Layer contract: "
                        f"it has no {', '.join(missing)}")


def require_dx(owner: str, what: str, layer, dx):
    """Return ``dx``, the input gradient ``what`` (e.g. ``"layer 2"``) of container ``owner``
    returned; raise RuntimeError if it is None (the child skipped it: needs_input_grad=False)."""
    if dx is None:
        raise RuntimeError(
            f"{owner}: {what} ({' '.join(repr(layer).split())}) returned None from backward, "
            f"but {owner} needs its input gradient; only the first layer of a Sequential may "
            f"skip its input gradient (needs_input_grad=False): set needs_input_grad = True "
            f"on {what}")
    return dx


def _indented(label: str, layer) -> str:
    """One child's line in a container's multi-line repr."""
    return f"  ({label}): " + repr(layer).replace("\n", "\n  ")


class Container(Layer):
    """Shared plumbing of containers (Sequential, Residual, Concat, Bidirectional).

    Subclasses list their children in ``_named_children()``; parameters are exposed under
    ``"<label>.<name>"``, built on each access from references to the children's arrays.
    """

    def _named_children(self) -> list:
        raise NotImplementedError

    def _collect(self, attr: str) -> dict[str, np.ndarray]:
        """The children's dicts ``attr`` under dotted names (a user's child without buffers
        has none)."""
        return {f"{label}.{k}": v for label, child in self._named_children()
                for k, v in (getattr(child, attr, None) or {}).items()}

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self._collect("params")

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        return self._collect("buffers")

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return self._collect("grads")

    def zero_grad(self) -> None:
        for _, child in self._named_children():
            if hasattr(child, "zero_grad"):
                child.zero_grad()
            else:
                for g in child.grads.values():
                    g[...] = 0

    def train(self, mode: bool = True):
        self.training = bool(mode)
        for _, child in self._named_children():
            if hasattr(child, "train"):
                child.train(mode)
        return self

    def astype(self, dtype):
        for _, child in self._named_children():
            child.astype(dtype)
        self._cache = None
        return self

    def summary(self, input_shape, *, dtype=None, file=None) -> None:
        """:meth:`Sequential.summary` of this container as a one-layer network."""
        Sequential(self).summary(input_shape, dtype=dtype, file=file)


class _LayerList(Container):
    """A container whose children are the list ``self.layers``, named "0", "1", ..."""

    def _named_children(self) -> list:
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)


class Sequential(_LayerList):
    """Layers applied one after the other: y = f_L(⋯ f_2(f_1(x))).

    Parameters are exposed under dotted names, ``"0.weight"`` for the weight of the first layer;
    ``params`` and ``grads`` are built on each access and hold references to the children's
    arrays, so an optimizer updating them in place updates the children.

    Notes
    -----
    Backward is the chain rule applied in reverse order: δ_{k−1} = f_k.backward(δ_k), each child
    accumulating its own parameter gradients on the way.

    A child whose forward returns a tuple (RNN, LSTM, GRU return ``(y, h_T[, c_T])``) passes only
    y to the next layer; its final states start no gradient (``backward(δ)`` with dh_T = None),
    so stacks such as ``Sequential(Embedding(...), LSTM(...), LSTM(...), Linear(...))`` work.

    The first layer may return None from backward (``needs_input_grad = False``: ∂L/∂x of the
    data is not needed), and then so does the Sequential; ``net.needs_input_grad`` reads and
    sets the first layer's flag. Any other layer returning None raises RuntimeError.
    """

    def __init__(self, *layers):
        # No Layer.__init__: params and grads are views of the children, not dicts of our own.
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            check_child("Sequential", f"layer {i}", layer)
        self.layers = list(layers)
        self.training = True
        self._cache = None

    @property
    def needs_input_grad(self) -> bool:
        """The first layer's flag: False lets backward skip ∂L/∂x and return None."""
        return bool(getattr(self.layers[0], "needs_input_grad", True)) if self.layers else True

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool) -> None:
        if self.layers:             # an empty Sequential returns dy: nothing to skip
            self.layers[0].needs_input_grad = bool(value)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
            if isinstance(x, tuple):      # a recurrent layer's (y, final states): pass y on
                x = x[0]
        self._cache = np.shape(x)         # y's shape, which dy must have
        return x

    def backward(self, dy):
        check_dy("Sequential", dy, self.saved())
        for i in range(len(self.layers) - 1, -1, -1):
            dy = self.layers[i].backward(dy)
            if i > 0:
                require_dx("Sequential", f"layer {i}", self.layers[i], dy)
        return dy

    def append(self, layer) -> "Sequential":
        self.layers.append(layer)
        return self

    def __repr__(self) -> str:
        if not self.layers:
            return "Sequential()"
        inner = "\n".join(_indented(str(i), l) for i, l in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    def summary(self, input_shape, *, dtype=None, file=None) -> None:
        """Print each layer with its output shape and parameter count, and the total.

        Runs one forward pass on zeros of ``input_shape`` (batch axis included, e.g. ``(1, 784)``)
        in evaluation mode, so no random state is consumed, then restores each layer's mode.
        """
        if dtype is None:
            dtype = next((p.dtype for p in self.params.values()), np.dtype(np.float32))
        modes = [getattr(layer, "training", None) for layer in self.layers]
        rows = []
        try:
            for layer in self.layers:
                if hasattr(layer, "eval"):
                    layer.eval()
            x = np.zeros(tuple(input_shape), dtype=dtype)
            for i, layer in enumerate(self.layers):
                x = layer.forward(x)
                x = x[0] if isinstance(x, tuple) else x
                n = int(sum(p.size for p in layer.params.values()))
                name = repr(layer)
                name = type(layer).__name__ if "\n" in name else name    # containers: one word
                rows.append((f"{i}", name, str(tuple(x.shape)), n))
        finally:
            for layer, mode in zip(self.layers, modes):
                if mode is not None and hasattr(layer, "train"):
                    layer.train(mode)
        header = ("#", "Layer", "Output shape", "Params")
        total = sum(r[3] for r in rows)
        cells = [header] + [(a, b, c, f"{d:,}") for a, b, c, d in rows]
        widths = [max(len(str(r[j])) for r in cells) for j in range(4)]
        line = "  ".join("-" * w for w in widths)
        fmt = lambda r: "  ".join(str(v).ljust(w) if j < 3 else str(v).rjust(w)
                                  for j, (v, w) in enumerate(zip(r, widths)))
        text = "\n".join([fmt(header), line] + [fmt(r) for r in cells[1:]] + [line,
                         f"Input shape {tuple(input_shape)}, total params: {total:,}"])
        print(text, file=file)


class Identity(Layer):
    """y = x: the trivial block, e.g. ``Concat(Identity(), block)`` for DenseNet's "input joined
    with the block's output".

    Shape
    -----
    y is x itself (the same array, not a copy).

    Notes
    -----
    ∂L/∂x = δ.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, (...,))
        self._cache = x.shape
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self.saved())
        return dy


class _ResidualCache(NamedTuple):
    """What Residual.backward needs."""

    y_shape: tuple          # block(x)'s, which dy must have
    dtype: np.dtype         # x's, which ∂L/∂x takes


class Residual(Container):
    """Residual connection (ResNet): y = block(x) + shortcut(x), where the shortcut is x itself,
    or ``projection(x)`` when the block changes the shape (e.g. a 1×1 convolution or a Linear).

    Parameters
    ----------
    block : layer
        The residual branch F; its output must have the shortcut's shape.
    projection : layer, optional
        The shortcut P; without it P(x) = x.

    Parameters of the children are exposed as ``"block.<name>"`` and ``"projection.<name>"``.

    Shape
    -----
    y has the shape of block(x), which must equal x's (or projection(x)'s).

    Notes
    -----
    Both branches receive the same upstream gradient δ and their input gradients add up:
    ∂L/∂x = F.backward(δ) + P.backward(δ), or F.backward(δ) + δ without a projection. Each child
    accumulates its own parameter gradients; a child returning None (needs_input_grad=False)
    raises RuntimeError.
    """

    def __init__(self, block, projection=None):
        check_child("Residual", "block", block)
        if projection is not None:
            check_child("Residual", "projection", projection)
        self.block = block
        self.projection = projection
        self.training = True
        self._cache = None

    def _named_children(self) -> list:
        out = [("block", self.block)]
        if self.projection is not None:
            out.append(("projection", self.projection))
        return out

    def forward(self, x):
        check_array("Residual", x, (...,))
        fx = self.block.forward(x)
        if self.projection is None:
            short, label = x, "x"
        else:
            short, label = self.projection.forward(x), "projection(x)"
        if np.shape(fx) != np.shape(short):
            hint = (" (give Residual a projection that maps x to the block's output shape)"
                    if self.projection is None else "")
            raise ValueError(f"Residual: block(x) has shape {tuple(np.shape(fx))} but {label} has "
                             f"shape {tuple(np.shape(short))}; they must match to be added{hint}")
        self._cache = _ResidualCache(np.shape(fx), x.dtype)
        return (fx + short).astype(x.dtype, copy=False)

    def backward(self, dy):
        cache = self.saved()
        check_dy("Residual", dy, cache.y_shape)
        dtype = cache.dtype
        dx = require_dx("Residual", "block", self.block, self.block.backward(dy))
        dshort = dy if self.projection is None else require_dx(
            "Residual", "projection", self.projection, self.projection.backward(dy))
        return (dx + dshort).astype(dtype, copy=False)

    def __repr__(self) -> str:
        return "Residual(\n" + "\n".join(_indented(l, c) for l, c in self._named_children()) + "\n)"


class _ConcatCache(NamedTuple):
    """What Concat.backward needs."""

    axis: int               # the joining axis, non-negative
    sizes: list             # each block's extent along it
    y_shape: tuple
    dtype: np.dtype         # x's, which ∂L/∂x takes


class Concat(_LayerList):
    """Parallel blocks joined along an axis (Inception, DenseNet):
    y = concatenate([b_1(x), ..., b_K(x)], axis).

    ``Concat(Identity(), block)`` is DenseNet's "input joined with the block's output".

    Parameters
    ----------
    *blocks : layers
        The branches, all applied to the same x (a single list or tuple is accepted too).
    axis : int, default 1
        The joining axis of the outputs (1: channels for (N, C, ...) layouts; -1: features).

    Parameters of block k are exposed as ``"k.<name>"``.

    Shape
    -----
    Every b_k(x) must have the same shape outside ``axis``; y's size along ``axis`` is the sum
    of theirs.

    Notes
    -----
    δ = ∂L/∂y is split along ``axis`` into the pieces δ_k matching each block's output, and the
    input gradients add up: ∂L/∂x = Σ_k b_k.backward(δ_k); a block returning None
    (needs_input_grad=False) raises RuntimeError.
    """

    def __init__(self, *blocks, axis: int = 1):
        if len(blocks) == 1 and isinstance(blocks[0], (list, tuple)):
            blocks = tuple(blocks[0])
        if not blocks:
            raise ValueError("Concat: needs at least one block, got none")
        for i, block in enumerate(blocks):
            check_child("Concat", f"block {i}", block)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Concat: axis must be an integer, got {axis!r}")
        self.layers = list(blocks)
        self.axis = int(axis)
        self.training = True
        self._cache = None



    def forward(self, x):
        check_array("Concat", x, (...,))
        ys = [np.asarray(b.forward(x)) for b in self.layers]
        ndim = ys[0].ndim
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"Concat: axis {self.axis} is out of range for block outputs with "
                             f"{ndim} axes (shape {ys[0].shape})")
        ax = self.axis % ndim
        outside = lambda s: s[:ax] + s[ax + 1:]
        for k, y in enumerate(ys[1:], start=1):
            if y.ndim != ndim or outside(y.shape) != outside(ys[0].shape):
                shapes = ", ".join(str(tuple(v.shape)) for v in ys)
                raise ValueError(f"Concat: block outputs must have the same shape outside axis "
                                 f"{self.axis}, got {shapes} (block 0 vs block {k})")
        sizes = [y.shape[ax] for y in ys]
        y = np.concatenate(ys, axis=ax).astype(x.dtype, copy=False)
        self._cache = _ConcatCache(ax, sizes, y.shape, x.dtype)
        return y

    def backward(self, dy):
        cache = self.saved()
        check_dy("Concat", dy, cache.y_shape)
        pieces = np.split(dy, np.cumsum(cache.sizes)[:-1], axis=cache.axis)
        dx = None
        for k, (block, piece) in enumerate(zip(self.layers, pieces)):
            d = block.backward(np.ascontiguousarray(piece))
            require_dx("Concat", f"block {k}", block, d)
            dx = d if dx is None else dx + d
        return np.asarray(dx).astype(cache.dtype, copy=False)

    def __repr__(self) -> str:
        inner = "\n".join(_indented(l, c) for l, c in self._named_children())
        return f"Concat(\n{inner}\n  axis={self.axis}\n)"
