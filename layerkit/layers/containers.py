"""Containers: Sequential."""

from __future__ import annotations

import numpy as np

from ..layer import Layer


class Sequential(Layer):
    """Layers applied one after the other: y = f_L(⋯ f_2(f_1(x))).

    Parameters are exposed under dotted names, ``"0.weight"`` for the weight of the first layer;
    ``params`` and ``grads`` are built on each access and hold references to the children's
    arrays, so an optimizer updating them in place updates the children.

    Notes
    -----
    Backward is the chain rule applied in reverse order: δ_{k−1} = f_k.backward(δ_k), each child
    accumulating its own parameter gradients on the way.
    """

    def __init__(self, *layers):
        # No Layer.__init__: params and grads are views of the children, not dicts of our own.
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            missing = [a for a in ("forward", "backward", "params", "grads") if not hasattr(layer, a)]
            if missing:
                raise TypeError(f"Sequential: layer {i} ({layer!r}) does not follow the Layer "
                                f"contract: it has no {', '.join(missing)}")
        self.layers = list(layers)
        self.training = True
        self._cache = None

    def _collect(self, attr: str) -> dict[str, np.ndarray]:
        out = {}
        for i, layer in enumerate(self.layers):
            for k, v in getattr(layer, attr).items():
                out[f"{i}.{k}"] = v
        return out

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self._collect("params")

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return self._collect("grads")

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def train(self, mode: bool = True) -> "Sequential":
        self.training = bool(mode)
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train(mode)
        return self

    def astype(self, dtype) -> "Sequential":
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        self._cache = True
        return x

    def backward(self, dy):
        self.saved()
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def append(self, layer) -> "Sequential":
        self.layers.append(layer)
        return self

    def __repr__(self) -> str:
        if not self.layers:
            return "Sequential()"
        inner = "\n".join(f"  ({i}): " + repr(l).replace("\n", "\n  ") for i, l in enumerate(self.layers))
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
                n = int(sum(p.size for p in layer.params.values()))
                rows.append((f"{i}", repr(layer).replace("\n", " "), str(tuple(x.shape)), n))
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
