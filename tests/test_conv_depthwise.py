"""The direct depthwise strategy (groups = in_channels, kernels/depthwise.py) of Conv1D/Conv2D:
forward, ∂L/∂x, ∂L/∂W and ∂L/∂b against plain loops (tests/reference.py) and PyTorch with the
same weights, for both dtypes and every geometry branch of the kernels (stride 1: whole-plane
runs; larger strides: row by row), and the choice of "auto"."""

import numpy as np
import pytest

import reference as ref
from helpers import torch_or_skip
from layerkit.layers import conv_algorithms
from layerkit.layers.conv import Conv1D, Conv2D, Conv3D
from layerkit.testing import assert_gradients_match

CLASSES = {1: Conv1D, 2: Conv2D}

# (ndim, C, multiplier m = O/C, kernel, stride, padding, dilation, spatial); every one small
# enough for the plain-Python run (NUMBA_DISABLE_JIT=1)
SETUPS = [
    (2, 3, 1, 3, 1, 1, 1, (5, 6)),                  # the common 3×3, stride 1, padding 1
    (2, 3, 2, 3, 2, 1, 1, (7, 6)),                  # stride 2, multiplier 2
    (2, 2, 1, 3, 1, 2, 2, (6, 7)),                  # dilation 2
    (2, 2, 2, (2, 3), 1, "same", (2, 1), (6, 5)),   # 'same' with an even extent: asymmetric
    (2, 4, 1, 4, 1, "same", 1, (5, 5)),             # 'same', kernel 4: 1 before, 2 after
    (2, 2, 2, (3, 2), (2, 1), (0, 2), (1, 2), (8, 6)),  # per-axis stride, padding, dilation
    (2, 3, 1, 5, 2, 2, 2, (11, 9)),                 # 5×5, stride 2 and dilation 2 together
    (2, 2, 3, 1, 1, 0, 1, (3, 4)),                  # 1×1 taps, multiplier 3
    (2, 1, 4, 3, 1, 0, 1, (5, 5)),                  # one input channel: a plain convolution
    (2, 2, 1, 3, 3, 0, 1, (7, 8)),                  # stride 3: rows no window reads get 0
    (1, 3, 2, 3, 2, 1, 1, (9,)),
    (1, 2, 1, 4, 1, "same", 2, (10,)),
]
IDS = [str(s) for s in SETUPS]


def _build(setup, dtype=np.float64, seed=0, n=2, bias=True):
    ndim, c, m, k, s, p, d, sp = setup
    layer = CLASSES[ndim](c, m * c, k, stride=s, padding=p, dilation=d, groups=c, dtype=dtype,
                          seed=seed, bias=bias, algorithm="depthwise")
    rng = np.random.default_rng(seed + 1)
    if bias:
        layer.params["bias"][...] = rng.standard_normal(m * c)
    x = rng.standard_normal((n, c) + sp).astype(dtype)
    return layer, x, rng


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("setup", SETUPS, ids=IDS)
def test_the_depthwise_loops_compute_it(setup):
    layer, x, _ = _build(setup)
    assert layer.algorithm_for(x.shape) == "depthwise"
    layer(x)
    assert layer._cache.strategy is conv_algorithms.DEPTHWISE


@pytest.mark.parametrize("c, o, groups, x_shape, want", [
    (3, 3, 3, (1, 3, 16, 16), "depthwise"),        # from 3 channels, 2^12 multiply-adds a sample
    (3, 3, 3, (1, 3, 4, 4), "im2col"),             # tinier: im2col (the loops compile only if used)
    (64, 128, 64, (2, 64, 2, 2), "depthwise"),
    (8, 8, 8, (1, 8, 200), "depthwise"),           # Conv1D
    (1, 8, 1, (1, 1, 8, 8), "im2col"),             # one input channel, 64 positions
    (2, 8, 2, (1, 2, 16, 16), "im2col"),           # two, 256 positions
    (1, 8, 1, (1, 1, 24, 24), "depthwise"),        # 24·24 positions and more
    (2, 4, 2, (1, 2, 1, 576), "depthwise"),
    (8, 8, 4, (1, 8, 32, 32), "im2col"),           # grouped, not depthwise
])
def test_auto_choice(c, o, groups, x_shape, want):
    cls = Conv1D if len(x_shape) == 3 else Conv2D
    layer = cls(c, o, 3, padding=1, groups=groups)
    assert layer.algorithm_for(x_shape) == want
    layer(np.zeros(x_shape, np.float32))
    assert layer._cache.strategy.name == want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setup", SETUPS, ids=IDS)
def test_forward_and_gradients_match_plain_loops(setup, dtype):
    layer, x, rng = _build(setup, dtype)
    w = layer.params["weight"]
    y = layer(x)
    assert y.dtype == dtype and y.flags.c_contiguous
    want = ref.conv_nd(x, w, layer.params["bias"], layer.stride, layer.geometry.padding,
                       layer.dilation, groups=layer.groups)
    np.testing.assert_allclose(y, want, **_tol(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    dx_want, dw_want, db_want = ref.conv_nd_grads(x, w, dy, layer.stride, layer.geometry.padding,
                                                  layer.dilation, groups=layer.groups)
    assert dx.shape == x.shape and dx.dtype == dtype
    for got, want in ((dx, dx_want), (layer.grads["weight"], dw_want),
                      (layer.grads["bias"], db_want)):
        np.testing.assert_allclose(got, want, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setup", SETUPS, ids=IDS)
def test_matches_torch(setup, dtype):
    torch = torch_or_skip()
    layer, x, rng = _build(setup, dtype)
    fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d}[setup[0]]
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["weight"], requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    yt = fn(xt, wt, bt, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
            groups=layer.groups)
    yt.backward(torch.from_numpy(dy))
    for got, want in ((y, yt.detach()), (dx, xt.grad), (layer.grads["weight"], wt.grad),
                      (layer.grads["bias"], bt.grad)):
        np.testing.assert_allclose(got, want.numpy(), **_tol(dtype))


@pytest.mark.parametrize("setup", SETUPS[:8:2] + SETUPS[-2:-1], ids=IDS[:8:2] + IDS[-2:-1])
def test_agrees_with_im2col(setup):
    # the same layer through the other algorithm: one result up to rounding
    layer, x, rng = _build(setup)
    other = CLASSES[setup[0]](layer.in_channels, layer.out_channels, layer.kernel_size,
                              stride=layer.stride, padding=layer.padding,
                              dilation=layer.dilation, groups=layer.groups, dtype=np.float64,
                              algorithm="im2col")
    other.params["weight"][...] = layer.params["weight"]
    other.params["bias"][...] = layer.params["bias"]
    y = layer(x)
    np.testing.assert_allclose(y, other(x), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward(dy), other.backward(dy), rtol=1e-12, atol=1e-12)
    for k in ("weight", "bias"):
        np.testing.assert_allclose(layer.grads[k], other.grads[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("setup", [SETUPS[1], SETUPS[3], SETUPS[10]], ids=str)
def test_gradcheck(setup):
    layer, x, _ = _build(setup)
    report = assert_gradients_match(layer, x, seed=0)
    assert {t.name for t in report.tensors} >= {"weight", "bias"}


@pytest.mark.parametrize("layout", ["fortran", "strided", "transposed"])
def test_non_contiguous_input(layout):
    layer, x, rng = _build(SETUPS[1])
    want = layer(x)
    dy = rng.standard_normal(want.shape)
    dx_want = layer.backward(dy)
    if layout == "fortran":
        xv = np.asfortranarray(x)
    elif layout == "strided":
        big = np.zeros(x.shape[:3] + (2 * x.shape[3],))
        big[..., ::2] = x
        xv = big[..., ::2]
    else:
        xv = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert not xv.flags.c_contiguous
    layer.zero_grad()
    np.testing.assert_array_equal(layer(xv), want)
    np.testing.assert_array_equal(layer.backward(np.asfortranarray(dy)), dx_want)


def test_backward_does_not_depend_on_the_callers_x():
    # the cache is a copy: changing x after forward changes nothing (padded and unpadded)
    for setup in (SETUPS[0], SETUPS[7]):
        layer, x, rng = _build(setup)
        y = layer(x)
        dy = rng.standard_normal(y.shape)
        layer.backward(dy)
        want = layer.grads["weight"].copy()
        layer.zero_grad()
        layer(x)
        x[...] = 1e3
        layer.backward(dy)
        np.testing.assert_array_equal(layer.grads["weight"], want)


@pytest.mark.parametrize("n", [0, 1])
def test_small_batches(n):
    layer, x, rng = _build(SETUPS[1], n=n)
    y = layer(x)
    assert y.shape == (n, 6, 4, 3)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    dx_want, dw_want, db_want = ref.conv_nd_grads(x, layer.params["weight"], dy, layer.stride,
                                                  layer.geometry.padding, layer.dilation,
                                                  groups=layer.groups)
    np.testing.assert_allclose(dx, dx_want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["weight"], dw_want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["bias"], db_want, rtol=1e-12, atol=1e-12)
    if n == 0:
        assert not layer.grads["weight"].any() and not layer.grads["bias"].any()


def test_no_bias_and_accumulation():
    layer, x, rng = _build(SETUPS[2], bias=False)
    assert set(layer.grads) == {"weight"}
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    layer.backward(dy)
    once = layer.grads["weight"].copy()
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads["weight"], 2 * once, rtol=1e-14)
    np.testing.assert_allclose(y, ref.conv_nd(x, layer.params["weight"], None, layer.stride,
                                              layer.geometry.padding, layer.dilation,
                                              groups=layer.groups), rtol=1e-12, atol=1e-12)


def test_float32_parameters_with_float64_input():
    layer, x, rng = _build(SETUPS[0], dtype=np.float32)
    x64 = x.astype(np.float64)
    y = layer(x64)
    assert y.dtype == np.float64
    dx = layer.backward(rng.standard_normal(y.shape))
    assert dx.dtype == np.float64 and layer.grads["weight"].dtype == np.float32


def test_explicit_algorithm_and_its_errors():
    assert Conv2D(1, 8, 3, algorithm="depthwise").algorithm_for((1, 1, 5, 5)) == "depthwise"
    assert Conv2D(4, 8, 3, groups=4, algorithm="im2col").algorithm_for((1, 4, 5, 5)) == "im2col"
    assert Conv2D(4, 8, 3, groups=2).algorithm_for((1, 4, 5, 5)) == "im2col"
    assert Conv3D(2, 2, 3, groups=2).algorithm_for((1, 2, 5, 5, 5)) == "im2col"
    with pytest.raises(ValueError, match=r"Conv2D\(4, 8, kernel_size=3\): algorithm='depthwise' "
                                         r"needs groups == in_channels \(4\), got groups=2"):
        Conv2D(4, 8, 3, groups=2, algorithm="depthwise")
    with pytest.raises(ValueError, match=r"Conv3D\(2, 2, kernel_size=3\): algorithm='depthwise' "
                                         r"is for 1-D and 2-D convolutions only, this is 3-D"):
        Conv3D(2, 2, 3, groups=2, algorithm="depthwise")
    layer = Conv2D(4, 8, 3, groups=4, algorithm="depthwise")
    assert repr(layer) == "Conv2D(4, 8, kernel_size=3, groups=4, algorithm='depthwise')"
    with pytest.raises(ValueError, match=r"Conv2D\(4, 8, kernel_size=3, groups=4, "
                                         r"algorithm='depthwise'\): expected dy of shape"):
        layer(np.zeros((1, 4, 5, 5), np.float32))
        layer.backward(np.zeros((1, 8, 4, 3), np.float32))


def test_parallel_kernels_agree_with_serial():
    # the prange twins run blocks of planes (forward, ∂L/∂x) and of channels (∂L/∂W); with any
    # number of blocks, more than there are planes included, they give the serial result
    from layerkit.kernels import depthwise as k

    rng = np.random.default_rng(4)
    for sh, sw in ((1, 1), (2, 1)):
        x = rng.standard_normal((3, 4, 9, 8))
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)))
        w = rng.standard_normal((8, 3, 3))
        b = rng.standard_normal(8)
        ho, wo = (xp.shape[2] - 3) // sh + 1, (xp.shape[3] - 3) // sw + 1
        y1, dy = np.empty((3, 8, ho, wo)), rng.standard_normal((3, 8, ho, wo))
        k.depthwise_forward(xp, w, b, y1, sh, sw, 1, 1)
        dx1 = np.empty_like(x)
        k.depthwise_backward_input(dy, w, dx1, 1, 2, *xp.shape[2:], sh, sw, 1, 1)
        gw1, gb1 = np.empty_like(w), np.empty_like(b)
        k.depthwise_backward_weight(xp, dy, gw1, gb1, sh, sw, 1, 1)
        for blocks in (1, 2, 5, 40):
            y2, dx2 = np.empty_like(y1), np.empty_like(dx1)
            gw2, gb2 = np.empty_like(w), np.empty_like(b)
            k.depthwise_forward_parallel(xp, w, b, y2, sh, sw, 1, 1, blocks)
            k.depthwise_backward_input_parallel(dy, w, dx2, 1, 2, *xp.shape[2:], sh, sw, 1, 1,
                                                blocks)
            k.depthwise_backward_weight_parallel(xp, dy, gw2, gb2, sh, sw, 1, 1, blocks)
            for a, b_ in ((y1, y2), (dx1, dx2), (gw1, gw2), (gb1, gb2)):
                np.testing.assert_array_equal(a, b_)


def test_partial_sum_chunks_of_the_weight_gradient():
    # a plane whose stride-1 run is longer than one chunk of partial sums (and not a multiple)
    layer, x, rng = _build((2, 1, 2, 3, 1, 1, 1, (21, 30)), n=1)
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    layer.backward(dy)
    _, dw_want, db_want = ref.conv_nd_grads(x, layer.params["weight"], dy, layer.stride,
                                            layer.geometry.padding, layer.dilation,
                                            groups=layer.groups)
    np.testing.assert_allclose(layer.grads["weight"], dw_want, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(layer.grads["bias"], db_want, rtol=1e-11, atol=1e-11)


def test_input_sizes_change_between_calls():
    # the padded scratch is reallocated for a new size; its border stays zero for a size seen
    # before (padding 2, so the border is wide; stride 1 and 2)
    for stride in (1, 2):
        layer = Conv2D(3, 6, 3, padding=2, stride=stride, groups=3, dtype=np.float64, seed=0,
                       algorithm="depthwise")
        rng = np.random.default_rng(stride)
        for shape in ((1, 3, 5, 6), (2, 3, 7, 7), (1, 3, 5, 6)):
            x = rng.standard_normal(shape) + 3.0             # no zeros to hide a stale border
            want = ref.conv_nd(x, layer.params["weight"], layer.params["bias"], layer.stride,
                               layer.geometry.padding, layer.dilation, groups=3)
            np.testing.assert_allclose(layer(x), want, rtol=1e-12, atol=1e-12)
            assert layer._cache.strategy is conv_algorithms.DEPTHWISE


def test_layer_runs_the_parallel_twins_for_large_work(monkeypatch):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 numba threads")
    from layerkit.kernels import depthwise as k

    layer, x, rng = _build(SETUPS[1])
    y_serial = layer(x)
    dy = rng.standard_normal(y_serial.shape)
    dx_serial = layer.backward(dy)
    dw_serial = layer.grads["weight"].copy()
    called = []
    for name in ("depthwise_forward_parallel", "depthwise_backward_input_parallel",
                 "depthwise_backward_weight_parallel"):
        real = getattr(k, name)
        monkeypatch.setattr(k, name, lambda *a, _real=real, _name=name: (called.append(_name),
                                                                         _real(*a))[1])
    monkeypatch.setattr(conv_algorithms, "_DEPTHWISE_PARALLEL_MIN", 0)
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        layer.zero_grad()
        np.testing.assert_array_equal(layer(x), y_serial)
        np.testing.assert_array_equal(layer.backward(dy), dx_serial)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(layer.grads["weight"], dw_serial)
    assert sorted(called) == ["depthwise_backward_input_parallel",
                              "depthwise_backward_weight_parallel", "depthwise_forward_parallel"]
