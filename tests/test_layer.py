import numpy as np
import pytest

import layerkit as lk


class Scale(lk.Layer):
    """A user's layer written against the base class: y = a · x."""

    def __init__(self):
        super().__init__()
        self.add_param("a", np.array([2.0]))

    def forward(self, x):
        self._cache = x
        return self.params["a"] * x

    def backward(self, dy):
        x = self.saved()
        self.grads["a"] += np.sum(dy * x, keepdims=True).reshape(1)
        return self.params["a"] * dy


def test_base_class_contract():
    layer = Scale()
    assert set(layer.params) == set(layer.grads) == {"a"}
    assert layer.grads["a"].shape == layer.params["a"].shape and not layer.grads["a"].any()
    with pytest.raises(RuntimeError, match=r"Scale\(\): backward called before forward"):
        layer.backward(np.ones(3))
    y = layer(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(y, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(layer.backward(np.ones(3)), [2.0, 2.0, 2.0])
    assert layer.grads["a"][0] == 6.0
    layer.zero_grad()
    assert layer.grads["a"][0] == 0.0
    assert layer.eval() is layer and not layer.training
    assert layer.train() is layer and layer.training
    assert layer.num_params() == 1
    assert lk.gradcheck(layer, np.array([1.0, -2.0, 0.5])).passed


def test_astype_converts_params_and_grads():
    layer = lk.Linear(3, 2)
    assert layer.params["weight"].dtype == np.float32
    layer.astype(np.float64)
    assert all(p.dtype == np.float64 for p in layer.params.values())
    assert all(g.dtype == np.float64 for g in layer.grads.values())
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int64"):
        layer.astype(np.int64)


def test_unimplemented_methods_raise():
    with pytest.raises(NotImplementedError, match="Layer does not implement forward"):
        lk.Layer().forward(np.ones(2))


def test_reprs_show_hyperparameters():
    assert repr(lk.Linear(3, 4)) == "Linear(3, 4)"
    assert repr(lk.Linear(3, 4, bias=False)) == "Linear(3, 4, bias=False)"
    assert repr(lk.Softmax(axis=1)) == "Softmax(axis=1)"
    assert repr(lk.Dropout(0.25)) == "Dropout(p=0.25)"
    assert "(1): ReLU()" in repr(lk.Sequential(lk.Linear(2, 2), lk.ReLU()))


def test_import_sets_thread_defaults_but_keeps_the_users():
    import os
    import subprocess
    import sys
    code = ("import os, layerkit; print(os.environ['OPENBLAS_THREAD_TIMEOUT'], "
            "os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["4", "PASSIVE"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["4", "ACTIVE"]
