import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import layerkit.layers.conv_algorithms as conv_algorithms
import reference as ref
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match
from layerkit.layers.conv import Conv1D, Conv2D, Conv3D

CLASSES = {1: Conv1D, 2: Conv2D, 3: Conv3D}

# -- the lecture's worked example and classic image filters ----------------------------------------

IMAGE = np.array([[1, 1, 1, 0, 0],
                  [0, 1, 1, 1, 0],
                  [0, 0, 1, 1, 1],
                  [0, 0, 1, 1, 0],
                  [0, 1, 1, 0, 0]], dtype=np.float64)


def _filter2d(kernel, image, padding):
    layer = Conv2D(1, 1, kernel.shape, padding=padding, bias=False, dtype=np.float64)
    layer.params["weight"][0, 0] = kernel
    return layer(image[None, None])[0, 0]


def test_lecture_worked_example():
    kernel = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float64)
    y = _filter2d(kernel, IMAGE, 0)
    np.testing.assert_array_equal(y, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_classic_filters_with_padding_one():
    img = np.random.default_rng(0).random((6, 7))
    padded = np.pad(img, 1)
    identity = np.zeros((3, 3)); identity[1, 1] = 1
    box = np.full((3, 3), 1 / 9)
    shift = np.zeros((3, 3)); shift[1, 2] = 1          # y[i, j] = x[i, j + 1]

    np.testing.assert_allclose(_filter2d(identity, img, 1), img, rtol=0, atol=0)
    box_expected = sum(padded[a:a + 6, b:b + 7] for a in range(3) for b in range(3)) / 9
    np.testing.assert_allclose(_filter2d(box, img, 1), box_expected, rtol=1e-14, atol=1e-15)
    assert np.isclose(_filter2d(box, img, 1)[3, 3], img[2:5, 2:5].mean())
    shifted = _filter2d(shift, img, 1)
    np.testing.assert_array_equal(shifted[:, :-1], img[:, 1:])
    np.testing.assert_array_equal(shifted[:, -1], 0)
    sharpen = 2 * identity - box
    np.testing.assert_allclose(_filter2d(sharpen, img, 1), 2 * img - box_expected, atol=1e-14)


# -- geometry strategy -----------------------------------------------------------------------------

@st.composite
def conv_setups(draw, ndim, max_size=6):
    """A valid (layer kwargs, input shape) for an ndim convolution, small enough for loops."""
    small = ndim == 3
    kernel = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(ndim))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    mode = draw(st.sampled_from(["int", "tuple", "valid", "same"]))
    if mode == "same":
        stride = (1,) * ndim
        padding = "same"
        pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
    else:
        stride = tuple(draw(st.integers(1, 2 if small else 4)) for _ in range(ndim))
        if mode == "int":
            padding = draw(st.integers(0, 2))
            pads = [(padding, padding)] * ndim
        elif mode == "tuple":
            padding = tuple(draw(st.integers(0, 2)) for _ in range(ndim))
            pads = [(p, p) for p in padding]
        else:
            padding = "valid"
            pads = [(0, 0)] * ndim
    spatial = tuple(
        draw(st.integers(max(1, d * (k - 1) + 1 - lo - hi), max(1, d * (k - 1) + 1 - lo - hi)
                         + (2 if small else max_size)))
        for k, d, (lo, hi) in zip(kernel, dilation, pads))
    c = draw(st.integers(1, 2 if small else 3))
    o = draw(st.integers(1, 2 if small else 3))
    n = draw(st.integers(1, 2))
    # stride and dilation sometimes given as tuples, sometimes as ints
    kwargs = dict(stride=stride if draw(st.booleans()) or len(set(stride)) > 1 else stride[0],
                  padding=padding, dilation=dilation,
                  bias=draw(st.booleans()))
    return c, o, kernel, kwargs, pads, (n, c) + spatial


def _build(ndim, setup, dtype, seed=0):
    c, o, kernel, kwargs, pads, shape = setup
    layer = CLASSES[ndim](c, o, kernel, dtype=dtype, seed=seed, **kwargs)
    rng = np.random.default_rng(seed)
    if layer.bias:
        layer.params["bias"][...] = rng.standard_normal(o)
    x = rng.standard_normal(shape).astype(dtype)
    return layer, x


# -- forward against the plain-loop reference ------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@settings(max_examples=25)
@given(data=st.data())
def test_forward_matches_loop_reference(ndim, dtype, data):
    setup = data.draw(conv_setups(ndim))
    layer, x = _build(ndim, setup, dtype, seed=data.draw(st.integers(0, 2**16)))
    y = layer(x)
    pads = setup[4]
    expected = ref.conv_nd(x, layer.params["weight"], layer.params.get("bias"),
                           layer.stride, pads, layer.dilation)
    assert y.shape == expected.shape and y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


def test_output_shapes_follow_the_formula():
    x = np.zeros((2, 3, 32, 32), dtype=np.float32)
    assert Conv2D(3, 8, 3)(x).shape == (2, 8, 30, 30)
    assert Conv2D(3, 8, 3, padding=1)(x).shape == (2, 8, 32, 32)
    assert Conv2D(3, 8, 3, padding="same")(x).shape == (2, 8, 32, 32)
    assert Conv2D(3, 8, 4, padding="same", dilation=3)(x).shape == (2, 8, 32, 32)
    assert Conv2D(3, 8, 3, stride=2, padding=1)(x).shape == (2, 8, 16, 16)
    assert Conv2D(3, 8, 5, stride=2)(x).shape == (2, 8, 14, 14)          # ⌊(32 − 5)/2⌋ + 1
    assert Conv2D(3, 8, 3, dilation=2)(x).shape == (2, 8, 28, 28)        # extent 5
    assert Conv2D(3, 8, (1, 5), stride=(1, 3))(x).shape == (2, 8, 32, 10)
    assert Conv1D(3, 4, 5, stride=3)(np.zeros((2, 3, 17))).shape == (2, 4, 5)
    assert Conv3D(3, 4, (1, 2, 3))(np.zeros((1, 3, 4, 5, 6))).shape == (1, 4, 4, 4, 4)


def test_uncovered_last_rows_get_zero_gradient():
    # 6 inputs, kernel 2, stride 3: windows read 0-1 and 3-4; input 2 and 5 are never read
    layer = Conv1D(1, 1, 2, stride=3, bias=False, dtype=np.float64)
    x = np.arange(6.0).reshape(1, 1, 6)
    layer(x)
    dx = layer.backward(np.ones((1, 1, 2)))
    w = layer.params["weight"][0, 0]
    np.testing.assert_array_equal(dx[0, 0], [w[0], w[1], 0, w[0], w[1], 0])


def _reads_input(layer, spatial, pads):
    """True if some window tap lands on the input (not only on padding) along every axis."""
    out = layer.geometry.output_shape("", spatial)
    return all(any(0 <= p * s - lo + j * d < size for p in range(m) for j in range(k))
               for size, m, k, s, d, (lo, _) in zip(spatial, out, layer.kernel_size, layer.stride,
                                                    layer.dilation, pads))


# -- gradient checks --------------------------------------------------------------------------------

@pytest.mark.parametrize("ndim", [1, 2, 3])
@settings(max_examples=20)
@given(data=st.data())
def test_gradcheck(ndim, data):
    setup = data.draw(conv_setups(ndim, max_size=4))
    seed = data.draw(st.integers(0, 2**16))
    layer, x = _build(ndim, setup, np.float64, seed=seed)
    assume(_reads_input(layer, x.shape[2:], setup[4]))      # else every gradient is 0: vacuous
    report = assert_gradients_match(layer, x, seed=seed)
    names = {t.name for t in report.tensors}
    assert {"weight"} <= names and ("bias" in names) == layer.bias


def test_gradients_accumulate_until_zero_grad():
    layer = Conv2D(2, 3, 3, padding=1, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    dy = np.ones((2, 3, 5, 5))
    layer(x); layer.backward(dy)
    once = {k: g.copy() for k, g in layer.grads.items()}
    layer(x); layer.backward(dy)
    for k in once:
        np.testing.assert_allclose(layer.grads[k], 2 * once[k])
    np.testing.assert_allclose(once["bias"], np.full(3, 50.0))        # Σ δ over n and positions
    layer.zero_grad()
    assert not any(g.any() for g in layer.grads.values())


@pytest.mark.parametrize("pdtype,xdtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_output_dtype_follows_input(pdtype, xdtype):
    layer = Conv2D(2, 3, 3, dtype=pdtype, seed=0)
    y = layer(np.ones((1, 2, 5, 5), dtype=xdtype))
    assert y.dtype == xdtype
    assert layer.backward(np.ones(y.shape, dtype=xdtype)).dtype == xdtype
    assert layer.grads["weight"].dtype == pdtype and layer.grads["bias"].dtype == pdtype


def test_kernels_get_contiguous_arrays(monkeypatch):
    seen = []

    def spy(kernel):
        def wrapped(*args):
            seen.extend(a.flags.c_contiguous for a in args[:2])
            return kernel(*args)
        return wrapped

    monkeypatch.setattr(conv_algorithms, "im2col", spy(conv_algorithms.im2col))
    monkeypatch.setattr(conv_algorithms, "col2im", spy(conv_algorithms.col2im))
    layer = Conv2D(3, 2, 3, stride=2, padding=1, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 6, 3, 2)).transpose(3, 2, 0, 1)  # a view
    assert not x.flags.c_contiguous
    y = layer(x)
    dx = layer.backward(np.ones(y.shape)[..., ::-1].copy()[..., ::-1])     # non-contiguous dy
    assert len(seen) == 6 and all(seen)      # im2col in forward and again in backward, col2im
    expected = ref.conv_nd(x, layer.params["weight"], layer.params["bias"], (2, 2),
                           [(1, 1), (1, 1)], (1, 1))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert dx.shape == x.shape


def test_default_init_is_pytorch_kaiming_uniform_and_seeded():
    a = Conv2D(16, 32, 3, seed=7).params["weight"]
    np.testing.assert_array_equal(a, Conv2D(16, 32, 3, seed=7).params["weight"])
    bound = 1 / math.sqrt(16 * 9)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.95 * bound
    assert not Conv2D(16, 32, 3).params["bias"].any()
    import layerkit.init as init
    custom = Conv1D(2, 3, 4, weight_init=init.zeros)
    assert custom.params["weight"].shape == (3, 2, 4) and not custom.params["weight"].any()
    assert "bias" not in Conv3D(1, 2, 3, bias=False).params


def test_repr():
    assert repr(Conv2D(3, 8, 3)) == "Conv2D(3, 8, kernel_size=3)"
    assert repr(Conv2D(3, 8, kernel_size=3, stride=2, padding=1)) == \
        "Conv2D(3, 8, kernel_size=3, stride=2, padding=1)"
    assert repr(Conv2D(3, 8, (3, 5), padding="same", dilation=(1, 2), bias=False)) == \
        "Conv2D(3, 8, kernel_size=(3, 5), padding='same', dilation=(1, 2), bias=False)"
    assert repr(Conv1D(1, 2, 4, padding="valid")) == "Conv1D(1, 2, kernel_size=4)"
    assert repr(Conv3D(1, 2, 3, stride=(1, 2, 2), padding=(0, 1, 1))) == \
        "Conv3D(1, 2, kernel_size=3, stride=(1, 2, 2), padding=(0, 1, 1))"


def test_shared_docstring():
    for n, cls in CLASSES.items():
        doc = cls.__doc__
        assert doc.startswith(f"{n}-D convolution")
        assert "⌊(W − K + 2P) / S⌋ + 1" in doc and "∂L/∂W = x ⋆ δ" in doc
        assert "full convolution of δ" in doc


# -- PyTorch ----------------------------------------------------------------------------------------

def _torch_check(torch, ndim, layer, x, dy, tol):
    fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
          3: torch.nn.functional.conv3d}[ndim]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["weight"], requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True) if layer.bias else None
    padding = layer.padding
    yt = fn(xt, wt, bt, stride=layer.stride, padding=padding, dilation=layer.dilation)
    yt.backward(torch.from_numpy(dy))
    y = layer(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=tol, atol=tol)
    layer.zero_grad()
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.grads["weight"], wt.grad.numpy(), rtol=tol, atol=tol)
    if layer.bias:
        np.testing.assert_allclose(layer.grads["bias"], bt.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("ndim", [1, 2, 3])
@settings(max_examples=25)
@given(data=st.data())
def test_matches_torch(ndim, data):
    torch = torch_or_skip()
    setup = data.draw(conv_setups(ndim))
    layer, x = _build(ndim, setup, np.float64, seed=data.draw(st.integers(0, 2**16)))
    out = layer(x).shape
    dy = np.random.default_rng(1).standard_normal(out)
    _torch_check(torch, ndim, layer, x, dy, 1e-10)


@pytest.mark.parametrize("case", [
    dict(ndim=2, c=3, o=5, k=3, stride=2, padding=1, dilation=1, size=(9, 8)),
    dict(ndim=2, c=2, o=4, k=(2, 4), stride=1, padding="same", dilation=(2, 1), size=(7, 6)),
    dict(ndim=1, c=4, o=3, k=4, stride=1, padding="same", dilation=3, size=(20,)),
    dict(ndim=3, c=2, o=3, k=3, stride=(1, 2, 2), padding=(1, 0, 1), dilation=1, size=(4, 5, 6)),
])
def test_matches_torch_float32_fixed_cases(case):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    layer = CLASSES[case["ndim"]](case["c"], case["o"], case["k"], stride=case["stride"],
                                  padding=case["padding"], dilation=case["dilation"], seed=0)
    layer.params["bias"][...] = rng.standard_normal(case["o"])
    x = rng.standard_normal((3, case["c"]) + case["size"]).astype(np.float32)
    dy = rng.standard_normal(layer(x).shape).astype(np.float32)
    _torch_check(torch, case["ndim"], layer, x, dy, 1e-4)


# -- errors -----------------------------------------------------------------------------------------

def test_errors():
    layer = Conv2D(3, 8, kernel_size=3)
    with pytest.raises(ValueError, match=r"Conv2D\(3, 8, kernel_size=3\): expected x of shape "
                                         r"\(N, 3, H, W\), got \(4, 5, 32, 32\)"):
        layer(np.ones((4, 5, 32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 3, H, W\), got \(3, 32, 32\)"):
        layer(np.ones((3, 32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Conv1D\(2, 1, kernel_size=3\): expected x of shape "
                                         r"\(N, 2, L\), got \(1, 2, 4, 4\)"):
        Conv1D(2, 1, 3)(np.ones((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 1, D, H, W\)"):
        Conv3D(1, 1, 3)(np.ones((1, 1, 4, 4)))
    with pytest.raises(TypeError, match=r"Conv2D\(3, 8, kernel_size=3\): expected x of dtype "
                                        r"float32 or float64, got int64"):
        layer(np.ones((1, 3, 8, 8), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy array, got list"):
        Conv1D(1, 1, 1)([[[1.0]]])
    with pytest.raises(ValueError, match=r"larger than the padded input along spatial axis 1 "
                                         r"\(2 \+ 0 \+ 0 = 2\)"):
        layer(np.ones((1, 3, 5, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="larger than the padded input"):
        Conv1D(1, 1, 3, dilation=3)(np.ones((1, 1, 6)))          # extent 7 > 6
    Conv1D(1, 1, 3, padding=1)(np.ones((1, 1, 1)))              # 1 + 2 >= 3: fine
    with pytest.raises(RuntimeError, match=r"Conv2D\(3, 8, kernel_size=3\): backward called "
                                           r"before forward"):
        layer.backward(np.ones((1, 8, 6, 6), dtype=np.float32))
    layer(np.ones((2, 3, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected dy of shape \(2, 8, 6, 6\).*got \(2, 8, 8, 8\)"):
        layer.backward(np.ones((2, 8, 8, 8), dtype=np.float32))


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"Conv2D\(3, 8, kernel_size=3\): stride must be an "
                                         r"integer >= 1 or a tuple of 2 such integers, got 0"):
        Conv2D(3, 8, 3, stride=0)
    with pytest.raises(ValueError, match=r"stride must be .* got \(1, 0\)"):
        Conv2D(3, 8, 3, stride=(1, 0))
    with pytest.raises(ValueError, match=r"padding must be an int, a tuple, 'valid' or 'same', "
                                         r"got 'full'"):
        Conv2D(3, 8, 3, padding="full")
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1, got stride \(2, 2\)"):
        Conv2D(3, 8, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"padding must be an integer >= 0 .* got -1"):
        Conv1D(3, 8, 3, padding=-1)
    with pytest.raises(ValueError, match=r"kernel_size must be an integer >= 1 or a tuple of 3 "
                                         r"such integers, got \(3, 3\)"):
        Conv3D(1, 1, (3, 3))
    with pytest.raises(ValueError, match=r"dilation must be .* got 0"):
        Conv1D(1, 1, 3, dilation=0)
    with pytest.raises(ValueError, match="in_channels must be a positive integer, got 0"):
        Conv2D(0, 8, 3)
    with pytest.raises(ValueError, match="out_channels must be a positive integer, got 2.5"):
        Conv2D(1, 2.5, 3)
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        Conv2D(1, 2, 3, dtype=np.int32)
