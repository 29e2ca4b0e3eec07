"""``needs_input_grad = False``: backward skips ∂L/∂x (returns None) and leaves every parameter
gradient bit-identical; containers, models and the gradient checker handle it."""

import numpy as np
import pytest

import layerkit as lk
from layerkit import gradcheck
from layerkit.layers import conv_algorithms
from layerkit.models import build, lenet5, vgg_small

DTYPES = [np.float32, np.float64]

# (factory(dtype), x shape): every geometry branch of the conv backward (no padding: dx written
# in place; padding: the padded scratch cut down), with and without bias.
LAYERS = {
    "Conv1D": (lambda dt: lk.Conv1D(3, 4, 3, stride=2, padding=1, dtype=dt, seed=1), (2, 3, 9)),
    "Conv1D-valid-nobias": (lambda dt: lk.Conv1D(2, 3, 2, bias=False, dtype=dt, seed=2),
                            (3, 2, 7)),
    "Conv2D": (lambda dt: lk.Conv2D(2, 5, 3, padding=1, dtype=dt, seed=3), (2, 2, 6, 5)),
    "Conv2D-same-dilated": (lambda dt: lk.Conv2D(3, 2, (2, 3), padding="same", dilation=2,
                                                 dtype=dt, seed=4), (2, 3, 7, 6)),
    "Conv2D-valid-strided": (lambda dt: lk.Conv2D(1, 6, 5, stride=2, dtype=dt, seed=5),
                             (4, 1, 11, 11)),
    "Conv3D": (lambda dt: lk.Conv3D(2, 3, 2, padding=1, dtype=dt, seed=6), (2, 2, 3, 4, 3)),
    "ConvTranspose2D": (lambda dt: lk.ConvTranspose2D(3, 2, 3, stride=2, padding=1, dtype=dt,
                                                      seed=9), (2, 3, 4, 5)),
    "Linear": (lambda dt: lk.Linear(6, 4, dtype=dt, seed=7), (5, 6)),
    "Linear-3d-nobias": (lambda dt: lk.Linear(3, 2, bias=False, dtype=dt, seed=8), (2, 4, 3)),
}


def _data(x_shape, layer, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    dy = rng.standard_normal(layer.forward(x).shape).astype(dtype)
    return x, dy


def _grads_after(layer, x, dy, times=1):
    layer.zero_grad()
    for _ in range(times):
        layer.forward(x)
        out = layer.backward(dy)
    return out, {k: g.copy() for k, g in layer.grads.items()}


def test_flag_defaults_to_true_and_is_per_instance():
    a, b = lk.Linear(2, 2), lk.Linear(2, 2)
    assert a.needs_input_grad is True and lk.ReLU().needs_input_grad is True
    a.needs_input_grad = False
    assert b.needs_input_grad is True and lk.Linear.needs_input_grad is True


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LAYERS)
def test_skip_returns_none_and_identical_parameter_gradients(name, dtype):
    factory, x_shape = LAYERS[name]
    full, skip = factory(dtype), factory(dtype)
    skip.needs_input_grad = False
    x, dy = _data(x_shape, full, dtype)
    dx, g_full = _grads_after(full, x, dy, times=2)        # twice: accumulation is unchanged too
    none, g_skip = _grads_after(skip, x, dy, times=2)
    assert none is None
    assert isinstance(dx, np.ndarray) and dx.shape == x.shape and dx.dtype == dtype
    assert set(g_skip) == set(g_full) and g_full
    for k in g_full:
        assert g_skip[k].dtype == g_full[k].dtype
        assert np.array_equal(g_skip[k], g_full[k]), k
        assert np.any(g_full[k] != 0), k                   # the comparison is not vacuous


@pytest.mark.parametrize("name", [n for n in LAYERS if n.startswith("Conv") and
                                  "Transpose" not in n])   # its ∂L/∂x is a GEMM, not col2im
def test_conv_skip_runs_no_input_grad_kernel_and_keeps_no_dx_scratch(name, monkeypatch):
    factory, x_shape = LAYERS[name]
    layer = factory(np.float64)
    layer.needs_input_grad = False
    x, dy = _data(x_shape, layer, np.float64)

    def boom(*args):
        raise AssertionError("∂L/∂x kernel called although needs_input_grad is False")

    # im2col's ∂L/∂x and, for one input channel (groups = in_channels), the depthwise loops'
    monkeypatch.setattr(conv_algorithms, "col2im", boom)
    monkeypatch.setattr(conv_algorithms.depthwise, "depthwise_backward_input", boom)
    monkeypatch.setattr(conv_algorithms.depthwise, "depthwise_backward_input_parallel", boom)
    layer.forward(x)
    assert layer.backward(dy) is None
    assert "dcols" not in layer.scratch and "dxp" not in layer.scratch
    layer.needs_input_grad = True                          # the same layer computes dx again
    layer.forward(x)
    with pytest.raises(AssertionError, match="kernel called"):
        layer.backward(dy)


def test_flag_can_be_switched_back_on():
    layer = lk.Conv2D(1, 2, 3, padding=1, dtype=np.float64, seed=0)
    ref = lk.Conv2D(1, 2, 3, padding=1, dtype=np.float64, seed=0)
    x, dy = _data((2, 1, 5, 5), layer, np.float64)
    layer.needs_input_grad = False
    assert _grads_after(layer, x, dy)[0] is None
    layer.needs_input_grad = True
    np.testing.assert_array_equal(_grads_after(layer, x, dy)[0], _grads_after(ref, x, dy)[0])


# -- containers -------------------------------------------------------------------------------

def _small_cnn(dtype=np.float64):
    return lk.Sequential(lk.Conv2D(1, 3, 3, padding=1, dtype=dtype, seed=0), lk.ReLU(),
                         lk.Flatten(), lk.Linear(3 * 4 * 4, 5, dtype=dtype, seed=1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_returns_none_when_its_first_layer_skips(dtype):
    full, skip = _small_cnn(dtype), _small_cnn(dtype)
    assert skip.needs_input_grad is True
    skip.needs_input_grad = False
    assert skip.needs_input_grad is False and skip[0].needs_input_grad is False
    assert skip[3].needs_input_grad is True
    x, dy = _data((2, 1, 4, 4), full, dtype)
    dx, g_full = _grads_after(full, x, dy)
    none, g_skip = _grads_after(skip, x, dy)
    assert none is None and dx.shape == x.shape
    for k in g_full:
        assert np.array_equal(g_skip[k], g_full[k]), k
    skip.needs_input_grad = True
    assert skip[0].needs_input_grad is True
    np.testing.assert_array_equal(_grads_after(skip, x, dy)[0], dx)


def test_nested_sequential_flag_reaches_the_innermost_first_layer():
    inner = lk.Sequential(lk.Linear(3, 4, seed=0), lk.ReLU())
    net = lk.Sequential(inner, lk.Linear(4, 2, seed=1))
    net.needs_input_grad = False
    assert inner[0].needs_input_grad is False
    x = np.ones((2, 3), np.float32)
    net.forward(x)
    assert net.backward(np.ones((2, 2), np.float32)) is None


def test_empty_sequential_flag_is_true():
    net = lk.Sequential()
    net.needs_input_grad = False                       # nothing to skip: ignored
    assert net.needs_input_grad is True


def test_sequential_with_a_skipping_middle_layer_raises():
    net = lk.Sequential(lk.Linear(4, 5, seed=0), lk.ReLU(), lk.Linear(5, 3, seed=1))
    net[2].needs_input_grad = False
    net.forward(np.ones((2, 4), np.float32))
    with pytest.raises(RuntimeError, match=r"Sequential: layer 2 \(Linear\(5, 3\)\) returned None"
                       r".*only the first layer of a Sequential may skip its input gradient "
                       r"\(needs_input_grad=False\)"):
        net.backward(np.ones((2, 3), np.float32))


def test_sequential_with_a_skipping_nested_sequential_in_the_middle_raises():
    net = lk.Sequential(lk.Linear(4, 5, seed=0), lk.Sequential(lk.Linear(5, 3, seed=1)))
    net[1].needs_input_grad = False
    net.forward(np.ones((2, 4), np.float32))
    with pytest.raises(RuntimeError, match=r"Sequential: layer 1 \(Sequential\( \(0\): "
                       r"Linear\(5, 3\) \)\) returned None.*only the first layer"):
        net.backward(np.ones((2, 3), np.float32))


def test_residual_and_concat_raise_when_a_child_skips():
    x = np.ones((2, 3))
    block = lk.Linear(3, 3, dtype=np.float64, seed=0)
    block.needs_input_grad = False
    res = lk.Residual(block)
    res.forward(x)
    with pytest.raises(RuntimeError, match=r"Residual: block \(Linear\(3, 3\)\) returned None"
                       r".*only the first layer of a Sequential may skip"):
        res.backward(x)
    proj = lk.Linear(3, 3, dtype=np.float64, seed=1)
    proj.needs_input_grad = False
    res = lk.Residual(lk.Linear(3, 3, dtype=np.float64, seed=2), proj)
    res.forward(x)
    with pytest.raises(RuntimeError, match=r"Residual: projection \(Linear\(3, 3\)\)"):
        res.backward(x)
    cat = lk.Concat(lk.Identity(), block, axis=-1)
    cat.forward(x)
    with pytest.raises(RuntimeError, match=r"Concat: block 1 \(Linear\(3, 3\)\) returned None"
                       r".*only the first layer of a Sequential may skip"):
        cat.backward(np.ones((2, 6)))


# -- models -----------------------------------------------------------------------------------

def test_lenet5_backward_returns_none_until_the_flag_is_set():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    net, ref = lenet5(seed=1), lenet5(seed=1)
    assert net.needs_input_grad is False and net[0].needs_input_grad is False
    assert build(net.spec).needs_input_grad is False
    loss = lk.CrossEntropy()
    loss.forward(net.forward(x), np.array([1, 7, 3]))
    dlogits = loss.backward()
    assert net.backward(dlogits) is None
    ref.needs_input_grad = True
    ref.forward(x)
    dx = ref.backward(dlogits)
    assert isinstance(dx, np.ndarray) and dx.shape == x.shape and dx.dtype == np.float32
    assert np.any(dx != 0)
    for k in net.grads:
        assert np.array_equal(net.grads[k], ref.grads[k]), k


def test_vgg_small_backward_returns_none_until_the_flag_is_set():
    net = vgg_small(channels=(2,), hidden=4, input_size=8, num_classes=3, seed=0)
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    dy = np.ones((2, 3), np.float32)
    net.forward(x)
    assert net.backward(dy) is None
    net.needs_input_grad = True
    net.forward(x)
    assert net.backward(dy).shape == x.shape


# -- gradcheck --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["Conv1D", "Conv2D-same-dilated", "Linear"])
def test_gradcheck_checks_a_skipping_layer_fully_and_restores_the_flag(name, dtype):
    factory, x_shape = LAYERS[name]
    layer = factory(dtype)
    layer.needs_input_grad = False
    x = np.random.default_rng(3).standard_normal(x_shape)
    report = gradcheck(layer, x, dtype=dtype)
    assert report.passed, str(report)
    assert [t.name for t in report.tensors][0] == "x"      # the input gradient was checked
    assert layer.needs_input_grad is False


def test_gradcheck_restores_the_flag_when_backward_raises():
    class Raising(lk.Linear):
        def backward(self, dy):
            raise ZeroDivisionError("boom")

    layer = Raising(3, 2, dtype=np.float64)
    layer.needs_input_grad = False
    with pytest.raises(ZeroDivisionError, match="boom"):
        gradcheck(layer, np.ones((2, 3)))
    assert layer.needs_input_grad is False


def test_gradcheck_reports_a_skip_that_changes_parameter_gradients():
    class ForgetsBias(lk.Linear):
        """Returns before the bias gradient when skipping."""

        def backward(self, dy):
            if self.needs_input_grad:
                return super().backward(dy)
            self.grads["weight"] += dy.T @ self.saved().x2
            return None

    layer = ForgetsBias(3, 2, dtype=np.float64, seed=0)
    layer.needs_input_grad = False
    report = gradcheck(layer, np.random.default_rng(0).standard_normal((4, 3)))
    assert not report.passed
    assert [p.pattern for p in report.problems] == ["skip changes grads"]
    assert "bias" in report.problems[0] and "weight" not in report.problems[0]
    assert all(t.passed for t in report.tensors)           # with the flag True all is right
    assert layer.needs_input_grad is False


def test_gradcheck_reports_a_skip_that_returns_something_else():
    class ReturnsZero(lk.Linear):
        def backward(self, dy):
            dx = super().backward(dy)
            return dx if dx is not None else np.float64(0.0)

    layer = ReturnsZero(3, 2, dtype=np.float64, seed=0)
    layer.needs_input_grad = False
    report = gradcheck(layer, np.random.default_rng(0).standard_normal((4, 3)))
    assert [p.pattern for p in report.problems] == ["wrong shape"]
    assert "needs_input_grad = False" in report.problems[0]


def test_gradcheck_accepts_a_layer_that_ignores_the_flag():
    layer = lk.Tanh()
    layer.needs_input_grad = False                         # Tanh does not skip: dx as always
    report = gradcheck(layer, np.random.default_rng(0).standard_normal((3, 4)))
    assert report.passed, str(report)
    assert layer.needs_input_grad is False


def test_gradcheck_of_a_flagged_model_restores_the_flag():
    net = _small_cnn()
    net.needs_input_grad = False
    report = gradcheck(net, np.random.default_rng(5).standard_normal((1, 1, 4, 4)),
                       max_coords=8)
    assert not report.problems, str(report)
    assert report.tensors[0].name == "x"
    assert net.needs_input_grad is False and net[0].needs_input_grad is False
