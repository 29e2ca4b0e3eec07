"""Contract probes: broken layers whose one clean forward/backward is right, so finite differences
alone pass them. Each must fail with its pattern named; the correct versions must pass."""

import numpy as np
import pytest

import layerkit as lk
from layerkit import gradcheck

from checker_corpus import Dense, Relu, ScaleShift


X = np.random.default_rng(0).standard_normal((5, 4))
X_OFF_ZERO = np.sign(X) * (np.abs(X) + 0.1)


@pytest.mark.parametrize("layer, x, pattern", [
    (Dense("assign"), X, "assigned, not accumulated"),
    (Dense("rebind"), X, "grads replaced"),
    (Dense("centre cache"), X, "not reentrant"),
    (Dense("first call only"), X, "stale cache"),
    (Relu("dy in place"), X_OFF_ZERO, "modifies dy in place"),
    (Relu("x in place"), X_OFF_ZERO * 3, "modifies input in place"),
    (Relu("clears cache"), X_OFF_ZERO, "not reentrant"),
    (ScaleShift(forgets_gamma=True), X, "sign flipped|scaled|wrong"),
], ids=["assign", "rebind", "centre-cache", "first-call-cache", "dy-in-place", "x-in-place",
        "clears-cache", "forgets-gamma"])
def test_each_broken_contract_fails_with_its_name(layer, x, pattern):
    report = gradcheck(layer, x)
    assert not report.passed, report
    names = {p.pattern for p in report.problems} | {t.pattern for t in report.tensors}
    if pattern == "sign flipped|scaled|wrong":      # dx is wrong once γ ≠ 1
        assert any(t.status == "fail" for t in report.tensors if t.name == "x"), report
    else:
        assert pattern in names, report


@pytest.mark.parametrize("layer, x", [(Dense(), X), (Relu(), X_OFF_ZERO), (ScaleShift(), X)],
                         ids=["dense", "relu", "scale-shift"])
def test_correct_versions_pass_every_probe(layer, x):
    report = gradcheck(layer, x)
    assert report.passed, report


def test_constant_parameters_are_moved_and_restored():
    layer = ScaleShift()
    gradcheck(layer, X)
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(4))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(4))


def test_probes_leave_the_callers_arrays_and_grads_as_they_were():
    layer, x = lk.Linear(4, 3, dtype=np.float64, seed=0), X.copy()
    layer.grads["weight"][...] = 7.0
    weight = layer.params["weight"].copy()
    gradcheck(layer, x)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(layer.params["weight"], weight)


def test_a_gradient_of_the_wrong_shape_is_reported_not_a_crash():
    class Squeezed(Dense):
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["b"] = self.grads["b"][None, :]     # (1, 3) for a (3,) parameter
            return dx

    report = gradcheck(Squeezed(), X)
    assert not report.passed
    assert "wrong shape" in {p.pattern for p in report.problems}, report


def test_generators_in_lists_and_legacy_random_state_are_frozen():
    class Noisy:
        def __init__(self):
            self.params, self.grads = {}, {}
            self.sources = [np.random.default_rng(0)]
            self.legacy = np.random.RandomState(0)

        def forward(self, x):
            self.m = (self.sources[0].random(x.shape) > 0.3) * (self.legacy.rand(*x.shape) > 0.2)
            return x * self.m

        def backward(self, dy):
            return dy * self.m

    report = gradcheck(Noisy(), X)
    assert report.passed, report
