"""layerkit.no_grad(): forwards keep no cache, outputs stay the same, backward after it raises."""

import threading

import numpy as np
import pytest

import layerkit as lk
from layerkit.layers import conv_algorithms
from layer_cases import CASES, example_input, output


def _forward(layer, x):
    return output(layer.forward(x))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_grad_gives_the_same_output_and_backward_after_it_raises(case, dtype):
    rng = np.random.default_rng(0)
    layer = case.make(dtype)
    if case.name in ("Dropout", "BatchNorm1D", "BatchNorm2D"):
        layer.eval()           # training mode draws a new mask / updates the statistics
    x = example_input(case, rng, dtype)
    y = _forward(layer, x)
    with lk.no_grad():
        assert not lk.grad_enabled()
        y_ng = _forward(layer, x)
    assert lk.grad_enabled()
    np.testing.assert_array_equal(y_ng, y)
    assert y_ng.dtype == y.dtype
    with pytest.raises(RuntimeError, match="no_grad"):
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize("case", [c for c in CASES if c.name in
                                  ("Linear", "Conv2D", "LSTM", "Sequential", "Bidirectional")],
                         ids=lambda c: c.name)
def test_a_forward_after_no_grad_caches_again_and_its_backward_is_right(case):
    """no_grad, then a normal forward: backward works and matches a layer never under no_grad."""
    rng = np.random.default_rng(1)
    x = example_input(case, rng)
    a, b = case.make(np.float64), case.make(np.float64)
    with lk.no_grad():
        _forward(a, x)
    ya = _forward(a, x)
    _forward(b, x)
    dy = rng.standard_normal(ya.shape)
    np.testing.assert_array_equal(a.backward(dy), b.backward(dy))
    for k in a.grads:
        np.testing.assert_array_equal(a.grads[k], b.grads[k])


def test_a_no_grad_forward_replaces_a_pending_cache_so_backward_refuses():
    """One cache per layer: the no_grad forward cannot leave the older cache in place (a backward
    would then use it for the wrong x), so backward raises instead of answering wrongly."""
    layer = lk.Linear(3, 2, seed=0)
    x = np.ones((4, 3), np.float32)
    y = layer.forward(x)
    with lk.no_grad():
        layer.forward(2 * x)
    with pytest.raises(RuntimeError, match=r"Linear\(3, 2\): backward after a forward under "
                                           r"layerkit.no_grad\(\)"):
        layer.backward(np.ones_like(y))


def test_blocks_nest_enable_grad_reenables_and_the_decorator_form_works():
    assert lk.grad_enabled()
    with lk.no_grad():
        with lk.no_grad():
            assert not lk.grad_enabled()
        assert not lk.grad_enabled()
        with lk.enable_grad():
            assert lk.grad_enabled()
        assert not lk.grad_enabled()
    assert lk.grad_enabled()

    @lk.no_grad()
    def infer():
        return lk.grad_enabled()

    assert infer() is False and infer() is False      # reusable
    assert lk.grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with lk.no_grad():
            1 / 0
    assert lk.grad_enabled()          # restored after an exception


def test_the_setting_belongs_to_one_thread():
    """A thread inside no_grad does not stop another thread's layers from caching."""
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def other():
        inside.wait()
        seen["enabled"] = lk.grad_enabled()
        layer = lk.Linear(3, 2, seed=0)
        y = layer.forward(np.ones((2, 3), np.float32))
        seen["dx"] = layer.backward(np.ones_like(y))
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with lk.no_grad():
        inside.set()
        done.wait()
    t.join()
    assert seen["enabled"] is True and seen["dx"].shape == (2, 3)


@pytest.mark.parametrize("n", [0, 1, 7, 20])
@pytest.mark.parametrize("algorithm,kwargs", [("im2col", dict(stride=1, padding=2)),
                                              ("im2col", dict(stride=2, padding=1, groups=2)),
                                              ("winograd", dict(padding=1))])
def test_convolution_by_blocks_of_samples_matches_one_block(monkeypatch, n, algorithm, kwargs):
    """Columns built a few samples at a time (blocks forced tiny here) give the same output and
    gradients as one block for the whole batch, with and without no_grad."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, 4, 9, 9))
    dy = None
    results = {}
    for block_bytes in (1, 1 << 40):          # one sample per block; the whole batch at once
        monkeypatch.setattr(conv_algorithms, "COLUMN_BLOCK_BYTES", block_bytes)
        conv = lk.Conv2D(4, 6, 3, dtype=np.float64, seed=0, algorithm=algorithm, **kwargs)
        with lk.no_grad():
            y_ng = conv.forward(x)
        y = conv.forward(x)
        if dy is None:
            dy = rng.standard_normal(y.shape)
        dx = conv.backward(dy)
        results[block_bytes] = (y_ng, y, dx, conv.grads["weight"].copy(), conv.grads["bias"].copy())
    small, whole = results[1], results[1 << 40]
    for a, b in zip(small, whole):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(small[0], small[1])      # no_grad changes nothing


def test_predict_and_evaluate_keep_no_cache():
    net = lk.models.lenet5(seed=0)
    x = np.random.default_rng(3).random((5, 1, 28, 28)).astype(np.float32)
    assert net.predict(x).shape == (5,)
    with pytest.raises(RuntimeError, match="no_grad"):
        net.backward(np.ones((5, 10), np.float32))
    net.forward(x)                    # outside no_grad, training works again
    net.backward(np.ones((5, 10), np.float32))
    lk.train.evaluate(net, lk.CrossEntropy(), (x, np.arange(5) % 10), batch_size=2)
    with pytest.raises(RuntimeError, match="no_grad"):
        net.backward(np.ones((5, 10), np.float32))
