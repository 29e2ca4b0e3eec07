"""Every named diagnosis: a deliberately broken layer must be reported with that pattern's name.

Each broken layer below is a correct layer with one classic mistake; the correct version is
checked too, so a pattern cannot come from the layer itself.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

import layerkit as lk
from layerkit.check.diagnosis import describe_factor
from layerkit import gradcheck

RNG = np.random.default_rng(7)


class Dense:
    """y = x Wᵀ + b with W square; ``bug`` names the mistake in backward."""

    def __init__(self, n=4, bug=None):
        rng = np.random.default_rng(0)
        self.params = {"weight": rng.standard_normal((n, n)), "bias": rng.standard_normal(n)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.bug = bug

    def forward(self, x):
        self.x = x
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, dy):
        dw = dy.T @ self.x
        dw = {"sign": -dw, "transpose": dw.T, "scale": dw / len(dy)}.get(self.bug, dw)
        self.grads["weight"] += dw
        if self.bug != "zeros":
            self.grads["bias"] += dy.sum(axis=0)
        dx = dy @ self.params["weight"]
        if self.bug == "ignores dy":
            dx = np.ones_like(dy) @ self.params["weight"]
        if self.bug == "affine in dy":
            dx = dx + 1.0
        return dx


def _pattern(report, tensor):
    return next(t for t in report.tensors if t.name == tensor).pattern


def test_correct_dense_passes():
    assert gradcheck(Dense(), RNG.standard_normal((5, 4))).passed


@pytest.mark.parametrize("bug, tensor, pattern", [
    ("sign", "weight", "sign flipped"),
    ("transpose", "weight", "transposed"),
    ("scale", "weight", "scaled by 1/5"),         # dW / N with N = 5: a 1/N that is not there
    ("zeros", "bias", "all zeros"),
])
def test_dense_mistakes_are_named(bug, tensor, pattern):
    report = gradcheck(Dense(bug=bug), RNG.standard_normal((5, 4)))
    assert not report.passed
    assert _pattern(report, tensor) == pattern
    other = [t for t in report.tensors if t.name != tensor]
    assert all(t.passed for t in other)            # the other gradients are not blamed
    assert pattern.split()[0] in report.explain()


def test_backward_that_ignores_dy():
    report = gradcheck(Dense(bug="ignores dy"), RNG.standard_normal((5, 4)))
    assert [p.pattern for p in report.problems] == ["ignores dy"]
    assert _pattern(report, "x") == "ignores dy"
    assert "doubling dy leaves the gradient of x unchanged" in report.problems[0]


def test_backward_with_a_term_independent_of_dy():
    report = gradcheck(Dense(bug="affine in dy"), RNG.standard_normal((5, 4)))
    assert [p.pattern for p in report.problems] == ["not linear in dy"]


@given(st.integers(-12, 12).filter(lambda p: p not in (0,)), st.integers(1, 9))
def test_scale_factor_is_reported_exactly(p, q):
    k = p / q
    if k in (1.0, -1.0):
        return
    layer = Dense()
    backward = layer.backward

    def scaled(dy):
        layer.grads["weight"] *= 0
        dx = backward(dy)
        layer.grads["weight"] *= k
        return dx
    layer.backward = scaled
    report = gradcheck(layer, RNG.standard_normal((3, 4)))
    assert _pattern(report, "weight") == f"scaled by {Fraction(p, q)}"


def test_describe_factor():
    assert describe_factor(0.25) == "1/4" and describe_factor(-2.0) == "-2"
    assert describe_factor(-0.375) == "-3/8"
    assert describe_factor(np.pi) == "3.142"            # not a simple fraction: 4 digits


class Blur:
    """3×3 box filter with zero padding, same size: y = Σ_{|di|,|dj|≤1} x[i+di, j+dj] / 9.
    With ``bug``, backward pads dy by repeating its edge instead of with zeros."""

    def __init__(self, bug=False):
        self.params, self.grads, self.bug = {}, {}, bug

    @staticmethod
    def _box(a, mode):
        p = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)), mode=mode)
        h, w = a.shape[2:]
        return sum(p[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9

    def forward(self, x):
        return self._box(x, "constant")

    def backward(self, dy):          # the box is symmetric: its adjoint is the same box
        return self._box(dy, "edge" if self.bug else "constant")


def test_wrong_padding_is_named_borders_only():
    x = RNG.standard_normal((2, 1, 7, 7))
    assert gradcheck(Blur(), x).passed
    report = gradcheck(Blur(bug=True), x)
    assert _pattern(report, "x") == "borders only"
    assert "within 1 element(s) of the border" in report.tensors[0].diagnosis


class RunningSum:
    """h_t = h_{t-1} + x_t (a linear recurrence): dx_t = Σ_{s ≥ t} dy_s. With ``window``,
    backward stops after ``window`` steps, like a truncated BPTT loop."""

    def __init__(self, window=None):
        self.params, self.grads, self.window = {}, {}, window

    def forward(self, x):
        return np.cumsum(x, axis=1)

    def backward(self, dy):
        T = dy.shape[1]
        dx = np.zeros_like(dy)
        for t in range(T):
            stop = T if self.window is None else min(T, t + self.window)
            dx[:, t] = dy[:, t:stop].sum(axis=1)
        return dx


def test_bptt_stopping_early_is_named_some_time_steps():
    x = RNG.standard_normal((2, 8, 3))
    assert gradcheck(RunningSum(), x).passed
    report = gradcheck(RunningSum(window=3), x)
    t = report.tensors[0]
    assert t.pattern == "some time steps"
    # steps 0..4 need dy from more than 3 steps ahead; steps 5..7 are complete
    assert "t = 0..4 of T = 8" in t.diagnosis and "and right at t = 5..7" in t.diagnosis
    assert "stop early" in t.diagnosis


class FlippedConv(lk.Conv2D):
    """A convolution whose weight gradient is taken with a convolution (kernel flipped)
    instead of the cross-correlation x ⋆ δ."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["weight"][...] = self.grads["weight"][:, :, ::-1, ::-1].copy()
        return dx


def test_convolution_instead_of_cross_correlation_is_named_flipped_kernel():
    x = RNG.standard_normal((2, 2, 6, 6))
    report = gradcheck(FlippedConv(2, 3, 3, dtype=np.float64, seed=1), x)
    assert _pattern(report, "weight") == "flipped kernel"
    assert _pattern(report, "x") is None and report.tensors[0].passed


class CopiedWeight(Dense):
    """Forward uses a copy of the weight taken in the constructor: params['weight'] is dead."""

    def __init__(self):
        super().__init__()
        self.w = self.params["weight"].copy()

    def forward(self, x):
        self.x = x
        return x @ self.w.T + self.params["bias"]


def test_forward_using_a_copy_is_named_numeric_zero():
    report = gradcheck(CopiedWeight(), RNG.standard_normal((5, 4)))
    assert _pattern(report, "weight") == "numeric zero"


def test_contract_problems_carry_pattern_names():
    class InPlace:
        params, grads = {}, {}

        def forward(self, x):
            x *= 2
            return x

        def backward(self, dy):
            return 2 * dy

    class Counter:
        params, grads = {}, {}
        calls = 0

        def forward(self, x):
            self.calls += 1
            return x * self.calls

        def backward(self, dy):
            return dy

    class Sums:
        params, grads = {}, {}

        def forward(self, x):
            return 3 * x

        def backward(self, dy):
            return 3 * dy.sum(axis=0)

    x = RNG.standard_normal((3, 4))
    assert gradcheck(InPlace(), x).problems[0].pattern == "modifies input in place"
    assert gradcheck(Counter(), x).problems[0].pattern == "not deterministic"
    assert gradcheck(Sums(), x).problems[0].pattern == "wrong shape"


def test_no_pattern_when_nothing_simple_fits():
    class Noisy(Dense):          # linear in dy, but each element off by its own factor
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["weight"] *= 1 + 0.3 * np.random.default_rng(3).standard_normal((4, 4))
            return dx

    report = gradcheck(Noisy(), RNG.standard_normal((5, 4)))
    t = next(t for t in report.tensors if t.name == "weight")
    assert t.status == "fail" and t.pattern is None and "no simple pattern" in t.diagnosis


def test_float32_check_catches_a_one_percent_error():
    class Float32Dense(Dense):
        def __init__(self, factor):
            super().__init__()
            self.params = {k: v.astype(np.float32) for k, v in self.params.items()}
            self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
            self.factor = factor

        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["weight"] *= self.factor
            return dx

    x = RNG.standard_normal((5, 4))
    good = gradcheck(Float32Dense(1.0), x, dtype=np.float32)
    assert good.passed and good.dtype == "float32" and good.max_rel_error > 1e-9   # float32 noise
    bad = gradcheck(Float32Dense(1.01), x, dtype=np.float32)
    assert _pattern(bad, "weight") == "scaled by 1.01"        # k to float32 precision


def test_assert_gradients_match_is_a_one_line_assertion():
    from layerkit.testing import assert_gradients_match
    x = RNG.standard_normal((5, 4))
    report = assert_gradients_match(Dense(), x)
    assert report.passed
    with pytest.raises(AssertionError, match=r"(?s)do not match finite differences.*sign flipped"):
        assert_gradients_match(Dense(bug="sign"), x)


class Pool2x2:
    """2×2 average pooling with stride 2 on (N, C, H, W); ``skip_last_row`` leaves the last row
    of windows out of backward (a range that stops one early)."""

    def __init__(self, skip_last_row=False):
        self.params, self.grads = {}, {}
        self.skip_last_row = skip_last_row

    def forward(self, x):
        n, c, h, w = x.shape
        self.shape = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))

    def backward(self, dy):
        dx = np.repeat(np.repeat(dy, 2, axis=2), 2, axis=3) / 4
        if self.skip_last_row:
            dx[:, :, -2:, :] = 0
        return dx


def test_last_row_of_windows_left_out_is_named_borders_only():
    x = RNG.standard_normal((2, 2, 6, 6))
    assert gradcheck(Pool2x2(), x).passed
    t = gradcheck(Pool2x2(skip_last_row=True), x, max_coords=200).tensors[0]
    assert t.status == "fail" and t.pattern == "borders only", t
    assert "last" in t.diagnosis and "axis 2" in t.diagnosis


def test_inverted_relu_mask_is_named():
    class Inverted(lk.ReLU):
        def backward(self, dy):
            return dy * (self._x <= 0)

        def forward(self, x):
            self._x = x.copy()
            return super().forward(x)

    x = np.sign(RNG.standard_normal((4, 5))) * (np.abs(RNG.standard_normal((4, 5))) + 0.1)
    t = gradcheck(Inverted(), x).tensors[0]
    assert t.status == "fail" and t.pattern == "inverted mask", t


class _Tanh:
    def __init__(self, error=None):
        self.params, self.grads, self.error = {}, {}, error

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dy):
        dx = dy * (1 - self.y ** 2)
        if self.error == "one element":
            dx.flat[137] *= 1.001
        elif self.error == "uniform":
            dx = dx + 5e-6
        return dx


@pytest.mark.parametrize("error", ["one element", "uniform"])
def test_small_errors_are_not_named_scaled_by_one(error):
    report = gradcheck(_Tanh(error), RNG.standard_normal((10, 50)), max_coords=500)
    t = report.tensors[0]
    assert t.status == "fail"
    assert not (t.pattern or "").startswith("scaled"), t.diagnosis
    if error == "one element":       # localised to the one position that is wrong
        assert "(2, 37)" == t.worst
