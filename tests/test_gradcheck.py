"""The checker must pass correct layers and fail every deliberately broken one."""

import numpy as np
import pytest

import layerkit as lk
from layerkit import gradcheck


class _BrokenLinear(lk.Linear):
    """Linear(4, 4) whose backward makes one classic mistake, chosen by ``mistake``."""

    def __init__(self, mistake):
        super().__init__(4, 4, dtype=np.float64, seed=0)
        self.params["bias"][...] = np.arange(4) / 10.0
        self.mistake = mistake

    def backward(self, dy):
        x = self.saved().x2       # x as (M, D), a copy made in forward
        W = self.params["weight"]
        dW, db, dx = dy.T @ x, dy.sum(0), dy @ W
        if self.mistake == "sign":
            dx = -dx
        elif self.mistake == "factor2":
            dW = 2 * dW
        elif self.mistake == "transposed":
            dW = dW.T
        elif self.mistake == "no_bias":
            db = np.zeros_like(db)
        elif self.mistake == "ignores_dy":
            ones = np.ones_like(dy)
            dW, db, dx = ones.T @ x, ones.sum(0), ones @ W
        self.grads["weight"] += dW
        self.grads["bias"] += db
        return dx


X = np.random.default_rng(42).standard_normal((3, 4))


def test_correct_linear_passes():
    report = gradcheck(_BrokenLinear("none"), X)
    assert report.passed and report.max_rel_error < 1e-9
    assert [t.name for t in report.tensors] == ["x", "weight", "bias"]


@pytest.mark.parametrize("mistake,bad", [
    ("sign", {"x"}), ("factor2", {"weight"}), ("transposed", {"weight"}), ("no_bias", {"bias"}),
    ("ignores_dy", {"x", "weight", "bias"}),
])
def test_broken_backward_fails_on_the_right_tensor(mistake, bad):
    report = gradcheck(_BrokenLinear(mistake), X)
    assert not report.passed
    failed = {t.name for t in report.tensors if t.status == "fail"}
    assert failed == bad
    for t in report.tensors:
        if t.name in bad:
            assert t.max_rel_error > 0.1
            assert t.analytic != pytest.approx(t.numeric, rel=1e-3)


def test_factor2_reports_values_at_worst_element():
    t = {t.name: t for t in gradcheck(_BrokenLinear("factor2"), X).tensors}["weight"]
    assert t.analytic == pytest.approx(2 * t.numeric, rel=1e-8)
    assert t.max_rel_error == pytest.approx(0.5, rel=1e-6)   # |2n − n| / |2n|
    assert t.worst.startswith("(")


def test_large_tensors_use_sampled_coordinates_and_directions():
    layer = lk.Linear(30, 20, dtype=np.float64, seed=1)
    report = gradcheck(layer, np.random.default_rng(1).standard_normal((5, 30)), max_coords=16)
    w = {t.name: t for t in report.tensors}["weight"]
    assert w.n_coords == 16 and w.n_directions == 4 and report.passed


def test_sampled_check_still_catches_a_single_wrong_element():
    class OneWrong(lk.Linear):
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["weight"][7, 11] += 0.5   # one element of 600 is wrong
            return dx

    layer = OneWrong(30, 20, dtype=np.float64, seed=1)
    report = gradcheck(layer, np.random.default_rng(1).standard_normal((5, 30)), max_coords=16)
    w = {t.name: t for t in report.tensors}["weight"]
    assert w.status == "fail" and w.worst.startswith("dir")   # found by a random direction


def test_relu_at_zero_is_reported_as_kink_not_hidden():
    report = gradcheck(lk.ReLU(), np.array([[0.0, 1.0, -1.0], [0.5, 0.0, -0.5]]))
    x = report.tensors[0]
    assert x.n_kinks == 2 and x.status == "pass"          # the two zeros are skipped, and said so
    only_kinks = gradcheck(lk.ReLU(), np.zeros((2, 2))).tensors[0]
    assert only_kinks.status == "kink" and not gradcheck(lk.ReLU(), np.zeros((2, 2))).passed
    # inside [x - 2h, x + 2h], but smooth at smaller steps: checked, not skipped
    near = gradcheck(lk.ReLU(), np.array([1.5e-4, 1.0])).tensors[0]
    assert near.n_kinks == 0 and near.status == "pass"
    assert near.elements[0]["numeric"] == pytest.approx(near.elements[0]["analytic"], rel=1e-9)


def test_all_zero_gradients_are_vacuous_not_a_pass():
    report = gradcheck(lk.ReLU(), -np.ones((2, 3)))
    assert report.tensors[0].status == "vacuous" and not report.passed


def test_frozen_randomness_for_dropout():
    assert gradcheck(lk.Dropout(0.5, seed=2), np.ones((4, 4)) + np.arange(16).reshape(4, 4)).passed


def test_contract_problems_are_reported():
    class NotDeterministic(lk.Layer):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng()     # found and frozen by the checker ...
            self.calls = 0

        def forward(self, x):
            self.calls += 1                        # ... but this hidden counter is not
            self._cache = x
            return x * self.calls

        def backward(self, dy):
            return dy

    class InPlace(lk.Layer):
        def forward(self, x):
            x *= 2
            self._cache = x
            return x

        def backward(self, dy):
            return 2 * dy

    class WrongShape(lk.Layer):
        def forward(self, x):
            self._cache = x
            return 3 * x

        def backward(self, dy):
            return 3 * dy.sum(axis=0)

    assert "not deterministic" in gradcheck(NotDeterministic(), X).problems[0]
    assert "modified its input 0 in place" in gradcheck(InPlace(), X).problems[0]
    wrong = gradcheck(WrongShape(), X)
    assert not wrong.passed and "shape (4,) for x of shape (3, 4)" in wrong.problems[0]


def test_contract_violations_raise_clear_errors():
    class NoGrads:
        params = {}

        def forward(self, x):
            return x

        def backward(self, dy):
            return dy

    with pytest.raises(TypeError, match="missing grads.*backward accumulates into grads"):
        gradcheck(NoGrads(), X)
    with pytest.raises(TypeError, match=r"params\['weight'\] is float32; build the layer with dtype=np.float64"):
        gradcheck(lk.Linear(4, 2), X)


def test_duck_typed_user_layer_passes():
    class Square:
        params, grads = {}, {}

        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, dy):
            return 2 * self.x * dy

    assert gradcheck(Square(), X).passed


def test_report_formats():
    report = gradcheck(_BrokenLinear("sign"), X)
    table = report.table()
    assert "FAIL" in table and "weight" in table and "max rel err" in table
    d = report.to_dict()
    assert d["passed"] is False and d["tensors"][0]["name"] == "x" and d["tensors"][0]["status"] == "fail"
    assert '"layer": "_BrokenLinear(4, 4)"' in report.to_json()


class _Saturated:
    """y = tanh(8x) at x = 1.2: output ≈ 1, gradient ≈ 1.5e-7 (a saturated unit)."""

    params, grads = {}, {}

    def __init__(self, factor=1.0):
        self.factor = factor

    def forward(self, x):
        self.x = x
        return np.tanh(8 * x)

    def backward(self, dy):
        return self.factor * dy * 8 / np.cosh(8 * self.x) ** 2


def test_tiny_gradient_next_to_large_output_is_judged_within_rounding_noise():
    x = np.array([1.2])
    report = gradcheck(_Saturated(), x)
    t = report.tensors[0]
    assert report.passed and 1e-9 < abs(t.analytic) < 2e-7
    noise = t.elements[0]["noise"]
    assert 0 < abs(t.analytic - t.numeric) <= 10 * noise        # judged within its rounding noise
    # ... but a real mistake of that size is still far outside the noise
    wrong = gradcheck(_Saturated(factor=2.0), x).tensors[0]
    assert wrong.status == "fail" and wrong.max_rel_error > 100 * report.tol


def test_inputs_are_reported_by_the_layers_own_names():
    class Scale:
        input_names = ("a", "b")

        def __init__(self):
            self.params, self.grads = {}, {}

        def forward(self, a, b):
            self.a, self.b = a.copy(), b.copy()
            return a * b

        def backward(self, dy):
            return dy * self.b, dy * self.a

    rng = np.random.default_rng(0)
    report = gradcheck(Scale(), (rng.standard_normal(3), rng.standard_normal(3)))
    assert report.passed and [t.name for t in report.tensors] == ["a", "b"]
