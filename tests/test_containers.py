import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_gradients_match


def _mlp(dtype=np.float64):
    return lk.Sequential(lk.Linear(4, 8, dtype=dtype, seed=0), lk.Tanh(),
                         lk.Linear(8, 3, dtype=dtype, seed=1), lk.Softmax())


def test_sequential_forward_is_composition():
    net = _mlp()
    x = np.random.default_rng(0).standard_normal((5, 4))
    expected = x
    for layer in [net[0], net[1], net[2], net[3]]:
        expected = layer(expected)
    np.testing.assert_array_equal(net(x), expected)


def test_sequential_dotted_params_are_references():
    net = _mlp()
    assert list(net.params) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert net.params["2.weight"] is net[2].params["weight"]
    assert net.grads["0.bias"] is net[0].grads["bias"]
    nested = lk.Sequential(net, lk.Linear(3, 1, dtype=np.float64))
    assert "0.2.weight" in nested.params and "1.weight" in nested.params


def test_sequential_gradcheck_and_modes():
    x = np.random.default_rng(1).standard_normal((5, 4))
    assert_gradients_match(_mlp(), x)
    net = lk.Sequential(lk.Linear(4, 6, dtype=np.float64, seed=0), lk.Dropout(0.4, seed=1),
                        lk.Sigmoid())
    assert_gradients_match(net, x)
    net.eval()
    assert not net[1].training
    np.testing.assert_array_equal(net(x), net[2](net[0](x)))
    net.train()
    assert net[1].training


def test_sequential_zero_grad_reaches_children():
    net = _mlp()
    net(np.ones((2, 4)))
    net.backward(np.ones((2, 3)) * np.array([1.0, 0.0, -1.0]))
    assert np.abs(net[0].grads["weight"]).sum() > 0
    net.zero_grad()
    assert all(not g.any() for g in net.grads.values())


def test_summary_shows_shapes_and_counts(capsys):
    net = lk.Sequential(lk.Flatten(), lk.Linear(784, 128), lk.ReLU(), lk.Dropout(0.5, seed=0),
                        lk.Linear(128, 10))
    state = net[3].rng.bit_generator.state
    net.summary((1, 1, 28, 28))
    out = capsys.readouterr().out
    assert "Linear(784, 128)" in out and "(1, 784)" in out and "(1, 128)" in out and "(1, 10)" in out
    assert "100,480" in out and "1,290" in out           # 784·128 + 128, 128·10 + 10
    assert "total params: 101,770" in out
    assert net[3].training and net[3].rng.bit_generator.state == state  # mode and RNG untouched


def test_sequential_rejects_non_layers():
    with pytest.raises(TypeError, match="layer 1 .* does not follow the Layer contract: it has no forward"):
        lk.Sequential(lk.ReLU(), object())
    with pytest.raises(RuntimeError, match="backward called before forward"):
        _mlp().backward(np.ones((1, 3)))
