"""Reshape and Permute: hand-worked examples, numpy references, finite differences, errors."""

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_gradients_match


def test_reshape_hand_worked_and_inverse_of_flatten():
    x = np.arange(12.0).reshape(2, 6)
    layer = lk.Reshape(2, 3)
    y = layer(x)
    np.testing.assert_array_equal(y[1], [[6.0, 7.0, 8.0], [9.0, 10.0, 11.0]])
    dy = np.arange(12.0).reshape(2, 2, 3) * 10
    np.testing.assert_array_equal(layer.backward(dy), dy.reshape(2, 6))
    img = np.random.default_rng(0).standard_normal((3, 16, 5, 5)).astype(np.float32)
    back = lk.Reshape(16, 5, 5)(lk.Flatten()(img))
    assert back.dtype == np.float32 and np.array_equal(back, img)
    assert lk.Reshape(-1, 5)(img).shape == (3, 80, 5)
    assert lk.Reshape((4, -1))(img).shape == (3, 4, 100)


def test_permute_hand_worked_and_round_trip():
    x = np.arange(24.0).reshape(1, 2, 3, 4)         # (N, C, H, W)
    layer = lk.Permute(2, 3, 1)
    y = layer(x)
    assert y.shape == (1, 3, 4, 2) and y.flags.c_contiguous
    assert y[0, 1, 2, 1] == x[0, 1, 1, 2]            # y[n, h, w, c] = x[n, c, h, w]
    np.testing.assert_array_equal(lk.Permute(3, 1, 2)(y), x)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(dy), np.transpose(dy, (0, 3, 1, 2)))


@pytest.mark.parametrize("layer, shape", [(lk.Reshape(3, -1), (2, 12)),
                                          (lk.Reshape(2, 2, 3), (3, 4, 3)),
                                          (lk.Permute(2, 3, 1), (2, 3, 4, 5)),
                                          (lk.Permute(2, 1), (3, 4, 2))])
def test_gradcheck(layer, shape):
    assert_gradients_match(layer, np.random.default_rng(2).standard_normal(shape))


def test_reprs():
    assert repr(lk.Reshape(16, 5, 5)) == "Reshape(16, 5, 5)"
    assert repr(lk.Permute(2, 3, 1)) == "Permute(2, 3, 1)"


@pytest.mark.parametrize("cls, args, match", [
    (lk.Reshape, (), r"^Reshape: shape must be one or more integers, got \(\)$"),
    (lk.Reshape, (2.0, 3), r"^Reshape: shape must be one or more integers"),
    (lk.Reshape, (0, 3), r"^Reshape: shape entries must be positive, with at most one -1, got "
                         r"\(0, 3\)$"),
    (lk.Reshape, (-1, -1), r"^Reshape: shape entries must be positive, with at most one -1"),
    (lk.Permute, (1, 1), r"^Permute: dims must be a permutation of 1 … 2 \(the axes after the "
                         r"batch axis\), got \(1, 1\)$"),
    (lk.Permute, (0, 1), r"^Permute: dims must be a permutation of 1 … 2"),
    (lk.Permute, (True,), r"^Permute: dims must be one or more integers"),
])
def test_bad_hyperparameters(cls, args, match):
    with pytest.raises(ValueError, match=match):
        cls(*args)


def test_bad_inputs_and_dy():
    with pytest.raises(ValueError, match=r"^Reshape\(4, 4\): cannot reshape samples of shape "
                                         r"\(3, 5\) \(15 values\) to \(4, 4\)$"):
        lk.Reshape(4, 4)(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match=r"^Reshape\(4, -1\): cannot reshape samples of shape "
                                         r"\(15,\) \(15 values\) to \(4, -1\)$"):
        lk.Reshape(4, -1)(np.zeros((2, 15)))
    with pytest.raises(ValueError, match=r"^Permute\(2, 1\): expected x with 3 axes \(N and 2 "
                                         r"more\), got shape \(2, 3, 4, 5\)$"):
        lk.Permute(2, 1)(np.zeros((2, 3, 4, 5)))
    with pytest.raises(TypeError, match=r"expected x of dtype float32 or float64, got int64"):
        lk.Permute(2, 1)(np.zeros((2, 3, 4), dtype=np.int64))
    for layer, x in ((lk.Reshape(6), np.zeros((2, 2, 3))), (lk.Permute(2, 1), np.zeros((2, 2, 3)))):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.zeros((2, 6)))
        y = layer(x)
        with pytest.raises(ValueError, match=r"expected dy of shape .* \(the output of forward\)"):
            layer.backward(np.zeros(y.shape + (1,)))
