"""Conv2D's Winograd F(4×4, 3×3) algorithm (``algorithm="winograd"``).

Checked against references independent of layerkit's convolution code:

- forward: the plain-loop ``reference.conv_nd`` (float64);
- backward: dx, dW, db written out in the test from their definitions, one kernel tap at a time
  (dW[o, c, a, b] = Σ dy[n, o, i, j]·x_pad[n, c, i + a, j + b], dx_pad scatter-adds
  dy[n, o, i, j]·W[o, c, a, b] at (i + a, j + b), db = Σ dy), and finite differences
  (``assert_gradients_match``);
- PyTorch's conv2d (float32, when installed).

Also: the float32 error bound, the algorithm choice (``algorithm_for``, the "auto" policy,
repr, constructor errors), ``needs_input_grad = False``, buffer reuse across batch sizes,
parameter changes between calls, and bit-identical results for any number of numba threads.
"""

import threading

import numba
import numpy as np
import pytest

import layerkit.layers.conv as conv_module
import layerkit.layers.conv_algorithms as conv_algorithms
from layerkit.kernels import winograd
import reference as ref
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match
from layerkit.layers.conv import Conv1D, Conv2D, Conv3D

F64_REL = 1e-11         # float64 winograd vs exact arithmetic: ~1e-13 expected
F32_REL = 1e-5          # float32 winograd vs the float64 reference, relative to max |reference|
TORCH_REL = 1e-4        # float32 vs float32 PyTorch


# -- references and helpers ------------------------------------------------------------------------

def _pads(padding):
    """((lo, hi), (lo, hi)) of a 3×3 convolution's padding argument."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        return ((1, 1), (1, 1))
    if isinstance(padding, int):
        return ((padding, padding),) * 2
    return tuple((p, p) for p in padding)


def reference_forward(x, w, b, padding):
    return ref.conv_nd(x, w, b, (1, 1), _pads(padding), (1, 1))


def reference_backward(x, w, dy, padding):
    """(dx, dW, db) of a stride-1, dilation-1 3×3 cross-correlation, in float64, tap by tap."""
    x, w, dy = (np.asarray(a, dtype=np.float64) for a in (x, w, dy))
    (lo_h, _), (lo_w, _) = pads = _pads(padding)
    xp = np.pad(x, ((0, 0), (0, 0)) + pads)
    ho, wo = dy.shape[2:]
    dxp, dw = np.zeros_like(xp), np.zeros(w.shape)
    for a in range(3):
        for b in range(3):
            dw[:, :, a, b] = np.einsum("noij,ncij->oc", dy, xp[:, :, a:a + ho, b:b + wo])
            dxp[:, :, a:a + ho, b:b + wo] += np.einsum("noij,oc->ncij", dy, w[:, :, a, b])
    dx = dxp[:, :, lo_h:lo_h + x.shape[2], lo_w:lo_w + x.shape[3]]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def max_rel_error(actual, expected):
    """max |actual − expected| / max |expected|."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max())


def assert_close(actual, expected, rel, what):
    err = max_rel_error(actual, expected)
    assert err <= rel, f"{what}: max |error| / max |reference| = {err:.3g} > {rel:g}"


def make_layer(c, o, padding, *, bias=True, dtype=np.float64, seed=0, algorithm="winograd"):
    layer = Conv2D(c, o, 3, padding=padding, bias=bias, dtype=dtype, seed=seed,
                   algorithm=algorithm)
    if bias:
        layer.params["bias"][...] = np.random.default_rng(seed + 1).standard_normal(o)
    return layer


def run(layer, x, dy_seed=2):
    """forward, then backward of a random dy (after zero_grad): y, dy, dx, dW copy, db copy."""
    y = layer(x)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(y.dtype)
    layer.zero_grad()
    dx = layer.backward(dy)
    db = layer.grads["bias"].copy() if layer.bias else None
    return y, dy, dx, layer.grads["weight"].copy(), db


def check_against_reference(layer, x, padding, rel, dy_seed=2):
    y, dy, dx, dw, db = run(layer, x, dy_seed)
    w = layer.params["weight"]
    b = layer.params["bias"] if layer.bias else None
    assert y.dtype == x.dtype and dx.dtype == x.dtype
    assert_close(y, reference_forward(x, w, b, padding), rel, "y")
    ref_dx, ref_dw, ref_db = reference_backward(x, w, dy, padding)
    assert_close(dx, ref_dx, rel, "dx")
    assert_close(dw, ref_dw, rel, "dW")
    if layer.bias:
        assert_close(db, ref_db, rel, "db")


# (N, C, O, H, W, padding, bias); output sizes in the comments
CASES = [
    (1, 3, 4, 3, 3, 0, True),             # 1×1, smaller than a tile
    (3, 2, 5, 4, 5, 0, True),             # 2×3
    (1, 2, 3, 1, 2, 1, True),             # 1×2 from a 1×2 input
    (3, 3, 4, 8, 8, 1, True),             # 8×8, whole tiles
    (1, 3, 2, 9, 7, 1, False),            # 9×7, odd, partial tiles
    (3, 2, 3, 6, 10, 2, True),            # 8×12
    (2, 3, 1, 1, 1, 2, True),             # 3×3 from a single pixel
    (2, 3, 4, 5, 6, "same", True),        # 5×6
    (2, 2, 3, 7, 6, "valid", False),      # 5×4
    (2, 2, 3, 5, 4, (0, 2), True),        # 3×6, different padding per axis
    (1, 16, 17, 5, 6, 1, True),           # C, O ≥ 16 (the "auto" regime)
    (1, 3, 2, 50, 37, 1, True),           # 50×37: 130 tiles, two bands of tile rows (7 + 6)
    (2, 2, 3, 7, 198, 2, False),          # 9×200: 150 tiles per sample, bands of 2 + 1 rows
]


# -- 1. float64 against the references -------------------------------------------------------------

@pytest.mark.parametrize("n,c,o,h,w,padding,bias", CASES)
def test_float64_matches_reference(n, c, o, h, w, padding, bias):
    layer = make_layer(c, o, padding, bias=bias, seed=n + c + o + h + w)
    assert layer.algorithm_for((n, c, h, w)) == "winograd"
    x = np.random.default_rng(h * w).standard_normal((n, c, h, w))
    check_against_reference(layer, x, padding, F64_REL)


@pytest.mark.parametrize("view", ["transposed", "strided"])
def test_float64_non_contiguous_input_and_dy(view):
    rng = np.random.default_rng(3)
    if view == "transposed":
        x = rng.standard_normal((7, 6, 3, 2)).transpose(3, 2, 1, 0)        # (2, 3, 6, 7)
    else:
        x = rng.standard_normal((2, 3, 12, 10))[:, :, ::2, 1:8]           # (2, 3, 6, 7)
    assert not x.flags.c_contiguous
    x_before = x.copy()
    layer = make_layer(3, 4, 1)
    y = layer(x)
    dy = rng.standard_normal(y.shape[::-1]).T                              # non-contiguous
    dx = layer.backward(dy)
    np.testing.assert_array_equal(x, x_before)
    assert_close(y, reference_forward(x, layer.params["weight"], layer.params["bias"], 1),
                 F64_REL, "y")
    ref_dx, ref_dw, ref_db = reference_backward(x, layer.params["weight"], dy, 1)
    assert_close(dx, ref_dx, F64_REL, "dx")
    assert_close(layer.grads["weight"], ref_dw, F64_REL, "dW")
    assert_close(layer.grads["bias"], ref_db, F64_REL, "db")


# -- 2. float32 error bound ------------------------------------------------------------------------

@pytest.mark.parametrize("n,c,o,h,w,padding", [
    (2, 16, 16, 8, 8, 1),
    (3, 3, 4, 7, 9, 0),
    (1, 8, 8, 13, 11, "same"),
    (2, 4, 6, 3, 5, 2),
])
def test_float32_error_against_float64_reference(n, c, o, h, w, padding):
    layer = make_layer(c, o, padding, dtype=np.float32, seed=c * o)
    x = np.random.default_rng(h + w).standard_normal((n, c, h, w)).astype(np.float32)
    check_against_reference(layer, x, padding, F32_REL)


@pytest.mark.parametrize("layer_dtype,x_dtype",
                         [(np.float64, np.float32), (np.float32, np.float64)])
def test_output_dtype_follows_input(layer_dtype, x_dtype):
    layer = make_layer(3, 4, 1, dtype=layer_dtype)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(x_dtype)
    check_against_reference(layer, x, 1, F32_REL)
    assert layer.grads["weight"].dtype == layer_dtype and layer.grads["bias"].dtype == layer_dtype


# -- 3. finite differences -------------------------------------------------------------------------

@pytest.mark.parametrize("padding,bias", [(1, True), (1, False), (0, True), (2, True)])
def test_gradcheck(padding, bias):
    layer = make_layer(3, 4, padding, bias=bias, seed=5)
    x = np.random.default_rng(6).standard_normal((2, 3, 6, 7))
    report = assert_gradients_match(layer, x)
    names = {t.name for t in report.tensors}
    assert "weight" in names and ("bias" in names) == bias


# -- 4. PyTorch ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,c,o,h,w,padding", [
    (2, 16, 16, 10, 10, 1),
    (3, 16, 24, 9, 11, 0),
    (2, 20, 16, 7, 6, 2),
])
def test_float32_matches_torch(n, c, o, h, w, padding):
    torch = torch_or_skip()
    layer = make_layer(c, o, padding, dtype=np.float32, seed=1)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["weight"], requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, bt, padding=padding)
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.from_numpy(dy))
    y = layer(x)
    layer.zero_grad()
    dx = layer.backward(dy)
    for name, ours, theirs in (("y", y, yt), ("dx", dx, xt.grad),
                               ("dW", layer.grads["weight"], wt.grad),
                               ("db", layer.grads["bias"], bt.grad)):
        theirs = theirs.detach().numpy()
        assert ours.dtype == np.float32
        assert_close(ours, theirs.astype(np.float64), TORCH_REL, name)


def test_transform_matrices_compute_the_correlation():
    """Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A is the 4×4 correlation of a 6×6 tile d with a 3×3 filter g."""
    from layerkit.kernels import winograd
    rng = np.random.default_rng(0)
    for _ in range(5):
        d, g = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
        direct = np.array([[np.sum(g * d[i:i + 3, j:j + 3]) for j in range(4)] for i in range(4)])
        u, v = winograd.G @ g @ winograd.G.T, winograd.B_T @ d @ winograd.B_T.T
        np.testing.assert_allclose(winograd.A_T @ (u * v) @ winograd.A_T.T, direct,
                                   rtol=0, atol=1e-13)


# -- 5. algorithm choice ---------------------------------------------------------------------------

def test_auto_thresholds():
    assert (conv_module._WINOGRAD_MIN_CHANNELS, conv_module._WINOGRAD_MIN_WORK) == \
        (32, 32 * 32 * 24 * 24)


# "auto" decides per input: Winograd needs a 3x3, stride-1, dilation-1 kernel with padding <= 2,
# >= 32 input and output channels and min(C, O)² × output positions >= 32²·24·24.
@pytest.mark.parametrize("args,kwargs,hw,expected", [
    ((32, 32, 3), dict(padding=1), (24, 24), "winograd"),
    ((32, 32, 3), dict(), (26, 26), "winograd"),              # 24x24 output
    ((32, 32, 3), dict(), (25, 26), "im2col"),                # 23x24 output
    ((32, 32, 3), dict(padding=1), (16, 16), "im2col"),
    ((128, 128, 3), dict(padding=1), (6, 6), "winograd"),     # 128²·36 = 32²·576
    ((128, 128, 3), dict(padding=1), (6, 5), "im2col"),       # 128²·30
    ((64, 64, 3), dict(padding=1), (12, 12), "winograd"),     # 64²·144 = 32²·576
    ((64, 64, 3), dict(padding=1), (8, 8), "im2col"),         # 64²·64
    ((64, 256, 3), dict(padding=1), (12, 12), "winograd"),    # min(C, O) = 64
    ((256, 64, 3), dict(padding=1), (11, 12), "im2col"),      # min(C, O) = 64: 64²·132
    ((256, 256, 3), dict(padding=1), (8, 8), "winograd"),
    ((32, 64, (3, 3)), dict(padding="same"), (32, 32), "winograd"),
    ((32, 32, 3), dict(padding=(0, 2)), (26, 26), "winograd"),
    ((31, 32, 3), dict(padding=1), (64, 64), "im2col"),
    ((32, 31, 3), dict(padding=1), (64, 64), "im2col"),
    ((32, 32, 3), dict(stride=2), (64, 64), "im2col"),
    ((32, 32, 3), dict(stride=(1, 2)), (64, 64), "im2col"),
    ((32, 32, 5), dict(), (64, 64), "im2col"),
    ((32, 32, (3, 1)), dict(), (64, 64), "im2col"),
    ((32, 32, 3), dict(dilation=2), (64, 64), "im2col"),
    ((32, 32, 3), dict(padding=3), (64, 64), "im2col"),
    ((32, 32, 3), dict(padding=(1, 3)), (64, 64), "im2col"),
    ((64, 64, 3), dict(padding=1, algorithm="im2col"), (64, 64), "im2col"),
    ((3, 8, 3), dict(algorithm="winograd"), (5, 5), "winograd"),
    ((1, 1, 3), dict(padding=2, algorithm="winograd"), (1, 1), "winograd"),
])
def test_algorithm_for_conv2d(args, kwargs, hw, expected):
    layer = Conv2D(*args, **kwargs)
    assert layer.algorithm == kwargs.get("algorithm", "auto")
    assert layer.algorithm_for((2, args[0]) + hw) == expected


def test_auto_takes_winograd_where_it_said_so(monkeypatch):
    """The decision is what forward does: count the transform calls."""
    calls = []
    real = conv_algorithms.winograd.input_transform
    monkeypatch.setattr(conv_algorithms.winograd, "input_transform",
                        lambda *a: calls.append(1) or real(*a))
    layer = Conv2D(32, 32, 3, padding=1, seed=0)
    layer(np.zeros((1, 32, 16, 16), np.float32))
    assert not calls
    layer(np.zeros((1, 32, 24, 24), np.float32))
    assert len(calls) == 1


@pytest.mark.parametrize("cls,kernel", [(Conv1D, 3), (Conv3D, 3)])
@pytest.mark.parametrize("algorithm", ["auto", "im2col"])
def test_algorithm_for_conv1d_conv3d(cls, kernel, algorithm):
    layer = cls(32, 32, kernel, padding=1, algorithm=algorithm)
    shape = (2, 32) + (40,) * cls.ndim
    assert layer.algorithm == algorithm and layer.algorithm_for(shape) == "im2col"


def test_repr():
    assert repr(Conv2D(3, 8, kernel_size=3, padding=1, algorithm="winograd")) == \
        "Conv2D(3, 8, kernel_size=3, padding=1, algorithm='winograd')"
    assert repr(Conv2D(3, 8, 3, bias=False, algorithm="winograd")) == \
        "Conv2D(3, 8, kernel_size=3, bias=False, algorithm='winograd')"
    assert repr(Conv2D(64, 64, 3, padding="same", algorithm="im2col")) == \
        "Conv2D(64, 64, kernel_size=3, padding='same', algorithm='im2col')"
    assert repr(Conv2D(16, 16, 3, padding=1)) == "Conv2D(16, 16, kernel_size=3, padding=1)"
    assert repr(Conv2D(16, 16, 3, algorithm="auto")) == "Conv2D(16, 16, kernel_size=3)"
    assert repr(Conv1D(2, 3, 3, algorithm="im2col")) == \
        "Conv1D(2, 3, kernel_size=3, algorithm='im2col')"


def test_winograd_forward_and_dx_do_not_run_im2col(monkeypatch):
    """Winograd computes y and ∂L/∂x (∂L/∂W may use im2col's columns): no im2col in forward,
    no col2im (im2col's ∂L/∂x) in backward. The im2col layer shows the spies work."""
    calls = []

    def spy(name, kernel):
        def wrapped(*args):
            calls.append(name)
            return kernel(*args)
        return wrapped

    for name in ("im2col", "col2im"):
        monkeypatch.setattr(conv_algorithms, name, spy(name, getattr(conv_algorithms, name)))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    for algorithm in ("winograd", "im2col"):
        calls.clear()
        layer = make_layer(3, 4, 1, algorithm=algorithm)
        y = layer(x)
        in_forward = list(calls)
        layer.backward(np.ones(y.shape))
        uses_col2im = any(name.startswith("col2im") for name in calls)
        if algorithm == "winograd":
            assert not in_forward and not uses_col2im, calls
        else:
            assert in_forward and uses_col2im, calls


# -- 6. constructor errors -------------------------------------------------------------------------

@pytest.mark.parametrize("cls,args,kwargs,prefix", [
    (Conv2D, (3, 8, 5), dict(), r"Conv2D\(3, 8, kernel_size=5"),
    (Conv2D, (3, 8, (3, 5)), dict(), r"Conv2D\(3, 8, kernel_size=\(3, 5\)"),
    (Conv2D, (3, 8, 3), dict(stride=2), r"Conv2D\(3, 8, kernel_size=3"),
    (Conv2D, (3, 8, 3), dict(dilation=2), r"Conv2D\(3, 8, kernel_size=3"),
    (Conv2D, (3, 8, 3), dict(padding=3), r"Conv2D\(3, 8, kernel_size=3"),
    (Conv2D, (3, 8, 3), dict(padding=(2, 3)), r"Conv2D\(3, 8, kernel_size=3"),
    (Conv1D, (3, 8, 3), dict(), r"Conv1D\(3, 8, kernel_size=3"),
    (Conv3D, (3, 8, 3), dict(), r"Conv3D\(3, 8, kernel_size=3"),
])
def test_winograd_not_applicable_raises(cls, args, kwargs, prefix):
    with pytest.raises(ValueError, match="^" + prefix + r"[,)].*winograd") as info:
        cls(*args, algorithm="winograd", **kwargs)
    assert "): " in str(info.value)


@pytest.mark.parametrize("cls", [Conv1D, Conv2D, Conv3D])
def test_unknown_algorithm_raises(cls):
    with pytest.raises(ValueError) as info:
        cls(3, 8, 3, algorithm="fft")
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}(3, 8, kernel_size=3")
    assert all(choice in message for choice in ("fft", "auto", "im2col", "winograd"))


# -- 7. needs_input_grad ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_needs_input_grad_false_skips_dx_and_keeps_parameter_gradients(dtype):
    layer = make_layer(4, 5, 1, dtype=dtype)
    x = np.random.default_rng(0).standard_normal((3, 4, 7, 6)).astype(dtype)
    y, dy, dx, dw, db = run(layer, x)
    assert dx is not None
    layer.zero_grad()
    layer.needs_input_grad = False
    np.testing.assert_array_equal(layer(x), y)
    assert layer.backward(dy) is None
    np.testing.assert_array_equal(layer.grads["weight"], dw)
    np.testing.assert_array_equal(layer.grads["bias"], db)


# -- 8. repeated calls, buffer reuse, parameter changes --------------------------------------------

def test_repeated_calls_with_changing_shapes_accumulate_correctly():
    layer = make_layer(3, 4, 1)
    rng = np.random.default_rng(0)
    total_dw, total_db = np.zeros(layer.params["weight"].shape), np.zeros(4)
    # batch sizes N = 3, 1, 3, then inputs that shrink inside the same 4×4-tile-rounded extent
    # (6 → 5, 10 → 9 rows: a reused padded buffer must not keep the previous input's last row)
    for shape in [(3, 3, 6, 6), (1, 3, 6, 6), (3, 3, 6, 6), (3, 3, 5, 6), (3, 3, 6, 5),
                  (2, 3, 10, 5), (2, 3, 9, 5), (3, 3, 6, 6)]:
        x = rng.standard_normal(shape)
        y = layer(x)
        assert_close(y, reference_forward(x, layer.params["weight"], layer.params["bias"], 1),
                     F64_REL, f"y {shape}")
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)                                    # no zero_grad: accumulates
        ref_dx, ref_dw, ref_db = reference_backward(x, layer.params["weight"], dy, 1)
        total_dw += ref_dw
        total_db += ref_db
        assert_close(dx, ref_dx, F64_REL, f"dx {shape}")
        assert_close(layer.grads["weight"], total_dw, F64_REL, f"dW {shape}")
        assert_close(layer.grads["bias"], total_db, F64_REL, f"db {shape}")


def test_returned_arrays_are_not_overwritten_by_later_calls():
    layer = make_layer(3, 4, 1)
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 5, 5))
    y1, _, dx1, _, _ = run(layer, x1)
    y1_copy, dx1_copy = y1.copy(), dx1.copy()
    run(layer, x2)
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(dx1, dx1_copy)


@pytest.mark.parametrize("algorithm", ["winograd", "im2col"])
def test_empty_batch(algorithm):
    """N = 0 gives empty y and dx and zero parameter gradients, as for im2col (Winograd divided
    by the number of samples per group here)."""
    layer = make_layer(3, 4, 1, algorithm=algorithm)
    y, _, dx, dw, db = run(layer, np.zeros((0, 3, 9, 7)))
    assert y.shape == (0, 4, 9, 7) and dx.shape == (0, 3, 9, 7)
    assert not dw.any() and not db.any()


def test_parameter_changes_between_calls_are_seen():
    layer = make_layer(3, 4, 1, dtype=np.float32)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 7))
    run(layer, x.astype(np.float32))
    step = rng.standard_normal(layer.params["weight"].shape).astype(np.float32)
    layer.params["weight"] -= 0.5 * step
    layer.params["bias"] += 1.0                                    # in place, as optimizers do
    check_against_reference(layer, x.astype(np.float32), 1, F32_REL)
    layer.astype(np.float64)                                       # new arrays, new dtype
    check_against_reference(layer, x, 1, F64_REL)
    layer.params["weight"][0] = 0.0
    check_against_reference(layer, x, 1, F64_REL)


# -- 9. threads ------------------------------------------------------------------------------------

# (N, C = O, H = W, whether the batch must be split over threads): 16 samples of 9 tiles; 17 of 4
# tiles (the split must not change which samples share a transform product); 17 of 64 tiles,
# large enough that the samples do run in several threads (checked, so the test stays meaningful);
# one 42×42 sample of 121 tiles, whose two bands of tile rows run in two threads
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 numba threads")
@pytest.mark.parametrize("n,c,size,split", [(16, 32, 12, False), (17, 64, 6, False),
                                            (17, 32, 32, True), (1, 32, 42, True)])
def test_results_do_not_depend_on_the_number_of_threads(n, c, size, split, monkeypatch):
    threads_used = set()
    transform = conv_algorithms.winograd.input_transform
    monkeypatch.setattr(conv_algorithms.winograd, "input_transform",
                        lambda *a: threads_used.add(threading.get_ident()) or transform(*a))
    layer = make_layer(c, c, 1, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((n, c, size, size)).astype(np.float32)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            threads_used.clear()
            results.append(run(layer, x))
    finally:
        numba.set_num_threads(before)
    if split:
        assert len(threads_used) > 1, "the batch ran in one thread: pick a larger case"
    (y1, _, dx1, dw1, db1), (y2, _, dx2, dw2, db2) = results
    for name, one, many in (("y", y1, y2), ("dx", dx1, dx2), ("dW", dw1, dw2), ("db", db1, db2)):
        np.testing.assert_array_equal(one, many, err_msg=f"{name}: 1 thread vs more")
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    w = layer.params["weight"].astype(np.float64)
    expected = sum(np.einsum("oc,ncij->noij", w[:, :, a, b], xp[:, :, a:a + size, b:b + size])
                   for a in range(3) for b in range(3)) + layer.params["bias"][:, None, None]
    assert_close(y1, expected, F32_REL, "y")              # and the results are right


# -- 10. work units ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n,tiles_h,tiles_w", [(5, 1, 1), (17, 2, 2), (3, 8, 8), (2, 13, 10),
                                               (1, 56, 56), (3, 3, 50), (4, 1, 100)])
def test_units_cover_every_tile_row_once(n, tiles_h, tiles_w):
    """Every (sample, tile row) in exactly one unit, in order; a unit is either whole samples
    (small images) or one sample's band of tile rows with ≥ 64 tiles unless it ends the sample."""
    units = conv_algorithms._winograd_units(n, tiles_h, tiles_w)
    rows = [(i, r) for unit in units for i, lo, hi in unit for r in range(lo, hi)]
    assert rows == [(i, r) for i in range(n) for r in range(tiles_h)]
    for unit in units:
        if tiles_h * tiles_w < 64:
            assert all(lo == 0 and hi == tiles_h for _, lo, hi in unit)
            assert len(unit) * tiles_h * tiles_w >= 64 or unit is units[-1]
        else:
            (i, lo, hi), = unit
            assert (hi - lo) * tiles_w >= 64 or hi == tiles_h


# -- the dynamic-range bound: tiles beyond it are computed directly ------------------------------

U32 = 2.0 ** -24       # float32 unit roundoff


def _padded_ones(c=3, tiles=2):
    return np.ones((1, c, 4 * tiles + 2, 4 * tiles + 2), dtype=np.float32)


@pytest.mark.parametrize("value, marked", [
    (conv_algorithms.WINOGRAD_RANGE, False),                           # exactly at the bound
    (np.float32(conv_algorithms.WINOGRAD_RANGE * (1 + 2 ** -17)), True),   # just beyond it
    (-conv_algorithms.WINOGRAD_RANGE, False), (np.nan, True), (np.inf, True), (-np.inf, True)])
def test_unsafe_tiles_marks_exactly_the_tiles_beyond_the_bound(value, marked):
    """Every field has max |x| = 1 except around pixel (5, 5), which lies in the 6×6 windows
    of all four tiles (rows/columns 0-5 and 4-9): they are marked iff |value| > 64 or it is not
    finite."""
    xp = _padded_ones()
    xp[0, 1, 5, 5] = value
    bad = np.zeros((1, 2, 2), dtype=bool)
    a = np.empty((10, 10), dtype=np.float32)
    count = winograd.unsafe_tiles(xp, 0, 0, 2, 8, 8, conv_algorithms.WINOGRAD_RANGE, bad, a)
    assert bad.all() == marked and bad.any() == marked and count == 4 * marked


def test_unsafe_tiles_ignores_outputs_beyond_the_cropped_output():
    """A 5×5 output still uses 2×2 tiles; the rounding rows and columns (zeros) are nobody's
    field, so they do not make a tile look unsafe."""
    xp = np.zeros((1, 2, 10, 10), dtype=np.float32)
    xp[0, :, :7, :7] = 1.0
    bad = np.zeros((1, 2, 2), dtype=bool)
    a = np.empty((10, 10), dtype=np.float32)
    assert winograd.unsafe_tiles(xp, 0, 0, 2, 5, 5, 64.0, bad, a) == 0
    assert winograd.unsafe_tiles(xp, 0, 0, 2, 8, 8, 64.0, bad, a) == 3   # 8×8: fields of zeros


def _field_scale(x, w, padding=1):
    """Σ_c Σ_taps |W| · r_q per output (n, o, i, j), r_q = max_c max_field |x|: the scale the
    documented error bound is relative to."""
    a = np.abs(x.astype(np.float64)).max(axis=1, keepdims=True)
    a = np.pad(a, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h, wd = a.shape[2] - 2, a.shape[3] - 2
    r = np.max([a[:, :, i:i + h, j:j + wd] for i in range(3) for j in range(3)], axis=0)
    return r * np.abs(w.astype(np.float64)).sum(axis=(1, 2, 3))[None, :, None, None]


def _counting_direct(monkeypatch):
    calls = []
    real = winograd.direct_tile

    def counted(*args):
        calls.append(args[2:4])
        return real(*args)
    monkeypatch.setattr(winograd, "direct_tile", counted)
    return calls


@pytest.mark.parametrize("factor, direct", [(1.0, False), (1 + 2 ** -17, True), (1e14, True)])
def test_range_edge_keeps_winograd_inside_and_matches_im2col_outside(factor, direct, monkeypatch):
    """x = 1 everywhere but one pixel at 64·factor. Inside the bound Winograd runs and its error
    is within 60 u of each output's field scale; outside, the tiles holding the pixel are
    computed directly and equal im2col's result within rounding (8 u of the field scale); with
    plain Winograd an output far from a 6.4e15 pixel would be off by ~1e10."""
    calls = _counting_direct(monkeypatch)
    x = np.ones((1, 4, 8, 8), dtype=np.float32)
    x[0, 2, 5, 5] = np.float32(conv_algorithms.WINOGRAD_RANGE * factor)
    layer = make_layer(4, 4, 1, dtype=np.float32, seed=3)
    y = layer.forward(x)
    assert bool(calls) == direct
    w = layer.params["weight"]
    scale = _field_scale(x, w)
    exact = reference_forward(x.astype(np.float64), w.astype(np.float64),
                              layer.params["bias"].astype(np.float64), 1)
    y_im2col = make_layer(4, 4, 1, dtype=np.float32, seed=3, algorithm="im2col").forward(x)
    assert np.all(np.abs(y - exact) <= 60 * U32 * scale)
    if direct:
        assert np.all(np.abs(y.astype(np.float64) - y_im2col) <= 8 * U32 * scale)


def test_non_finite_pixels_spread_only_to_their_fields_forward_and_backward():
    """One NaN and one inf pixel: NaN and inf land exactly where im2col puts them (PyTorch's 36
    NaN outputs for 4 channels), in y and in ∂L/∂x; every other value agrees."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    x[0, 1, 4, 4], x[1, 3, 0, 7] = np.nan, np.inf
    layers = [make_layer(4, 4, 1, dtype=np.float32, seed=1, algorithm=a)
              for a in ("winograd", "im2col")]
    ys = [l.forward(x) for l in layers]
    assert np.isnan(ys[1]).sum() == 36
    dy = rng.standard_normal(ys[0].shape).astype(np.float32)
    dy[1, 2, 3, 3] = np.nan
    dxs = [l.backward(dy) for l in layers]
    for ours, theirs in ((ys[0], ys[1]), (dxs[0], dxs[1])):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
        finite = np.isfinite(theirs)
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-4, atol=1e-4)


def test_auto_at_32_channels_keeps_a_nan_in_its_fields():
    """The case that spread one NaN over 512 outputs: 32 channels, 24×24, "auto" (Winograd)."""
    layer = Conv2D(32, 32, 3, padding=1, seed=0)
    x = np.random.default_rng(0).standard_normal((1, 32, 24, 24)).astype(np.float32)
    assert layer.algorithm_for(x.shape) == "winograd"
    x[0, 7, 10, 13] = np.nan
    assert np.isnan(layer.forward(x)).sum() == 32 * 9


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 numba threads")
def test_tiles_computed_directly_do_not_depend_on_the_number_of_threads():
    """Outliers and NaNs in several samples and bands (units running in different threads):
    the same y and dx for 1 and several threads, and im2col's NaN pattern."""
    layer = make_layer(32, 32, 1, dtype=np.float32)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 32, 42, 42)).astype(np.float32)
    x[0, 3, 5, 40], x[1, 0, 30, 2], x[2, 31, 41, 41] = 1e15, np.nan, -np.inf
    dy = rng.standard_normal((3, 32, 42, 42)).astype(np.float32)
    dy[2, 1, 20, 20] = np.nan
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            results.append((layer.forward(x), layer.backward(dy)))
    finally:
        numba.set_num_threads(before)
    for one, many in zip(*results):
        np.testing.assert_array_equal(one, many)
    reference = make_layer(32, 32, 1, dtype=np.float32, algorithm="im2col")
    y_ref, dx_ref = reference.forward(x), reference.backward(dy)
    np.testing.assert_array_equal(np.isnan(results[0][0]), np.isnan(y_ref))
    np.testing.assert_array_equal(np.isnan(results[0][1]), np.isnan(dx_ref))
