"""The checker's numerics on awkward layers: correct ones (near-kinks, ties, ill-conditioned,
tiny gradients next to large outputs) must pass; broken ones hidden in those places must fail."""

import numpy as np
import pytest

import layerkit as lk
from layerkit import gradcheck

from checker_corpus import Elementwise, LayerNorm, RowMax, Softmax


RNG = np.random.default_rng(0)


def test_near_kinks_are_checked_with_smaller_steps():
    x = np.array([3e-4, -3e-4, 1.2e-4, -5e-5, 0.7])
    right = gradcheck(Elementwise(np.abs, np.sign), x)
    assert right.passed, right
    assert right.tensors[0].n_kinks == 0          # near, not at, the kink: every element checked
    # a derivative that switches sign at 1e-3 instead of 0 is wrong exactly where the step
    # straddles the kink: found, not skipped
    wrong = gradcheck(Elementwise(np.abs, lambda v: np.where(v > 1e-3, 1.0, -1.0)), x)
    assert not wrong.passed and wrong.tensors[0].status == "fail", wrong


def test_a_real_kink_is_still_left_out():
    report = gradcheck(Elementwise(np.abs, np.sign), np.array([0.0, 0.5, -0.5]))
    t = report.tensors[0]
    assert report.passed and t.n_kinks == 1 and t.elements[0]["kink"]


def test_near_ties_of_a_max_pass_and_the_tie_group_catches_shared_gradients():
    near = RNG.standard_normal((3, 5))
    near[:, 1] = near.max(axis=-1) - 1e-5           # a near-tie in every row
    assert gradcheck(RowMax(), near).passed
    tied = RNG.standard_normal((3, 5))
    tied[:, 2] = tied.max(axis=-1)                   # exact ties
    right = gradcheck(RowMax(), tied)
    assert right.passed, right
    wrong = gradcheck(RowMax(share_ties=True), tied)
    assert not wrong.passed, wrong
    assert any(e["index"].startswith("tie at") and e["rel_error"] > 0.1
               for e in wrong.tensors[0].elements)


def test_max_pool_with_ties_passes():
    x = np.repeat(np.repeat(RNG.standard_normal((1, 2, 2, 2)), 2, axis=2), 2, axis=3)
    layer = lk.MaxPool2D(2)
    assert gradcheck(layer, x).passed


@pytest.mark.parametrize("x", [
    RNG.standard_normal((4, 6)) * 1e-3,                     # σ ≈ 1e-3: strongly curved
    1e4 + RNG.standard_normal((4, 6)),                      # mean 1e4: rounding in the input
], ids=["sigma-1e-3", "mean-1e4"])
def test_ill_conditioned_layer_norm_passes(x):
    report = gradcheck(LayerNorm(), x)
    assert report.passed, report


def test_ill_conditioned_layer_norm_with_a_bug_fails():
    report = gradcheck(LayerNorm(bug=True), RNG.standard_normal((4, 6)) * 1e-3)   # no x̂ term
    assert not report.passed


@pytest.mark.parametrize("tau, x", [(1.0, RNG.choice([-50.0, 50.0], (3, 4)) + RNG.standard_normal((3, 4))),
                                    (0.01, RNG.standard_normal((3, 4)))],
                         ids=["logits-50", "peaked"])
def test_softmax_with_tiny_gradients_passes(tau, x):
    report = gradcheck(Softmax(tau), x)
    assert report.passed, report


def test_a_small_uniform_error_is_caught():
    class Off(Elementwise):
        def backward(self, dy):
            return super().backward(dy) + 5e-6

    report = gradcheck(Off(np.tanh, lambda v: 1 - np.tanh(v) ** 2), RNG.standard_normal((4, 5)))
    assert not report.passed


# -- the two-point first pass: D(h) alone where it already agrees ---------------------------------

class _Counted(Elementwise):
    calls = 0

    def forward(self, x):
        type(self).calls += 1
        return super().forward(x)


def _forward_calls(f, df, x) -> int:
    _Counted.calls = 0
    report = gradcheck(_Counted(f, df), x)
    assert report.passed, report
    return _Counted.calls


def test_a_smooth_correct_layer_costs_two_forwards_per_element():
    # The checker's fixed calls (first forward, backward passes, probes) cancel in the difference.
    small = _forward_calls(np.sin, np.cos, RNG.standard_normal(5))
    large = _forward_calls(np.sin, np.cos, RNG.standard_normal(10))
    assert large - small == 2 * 5


def test_strong_curvature_takes_the_fourth_order_pass_and_passes():
    # exp(5x): D(h) is off by (5h)²/6 ≈ 4e-8 relative, above a tenth of the tolerance, so
    # every element needs D(2h) as well (four forwards), and the fourth-order estimate passes.
    f, df = (lambda v: np.exp(5 * v)), (lambda v: 5 * np.exp(5 * v))
    small = _forward_calls(f, df, RNG.uniform(-0.1, 0.1, 5))
    large = _forward_calls(f, df, RNG.uniform(-0.1, 0.1, 10))
    assert large - small == 4 * 5


@pytest.mark.parametrize("error", [3e-7, -3e-7, 2e-6])
def test_an_error_just_above_the_tolerance_is_caught(error):
    wrong = Elementwise(np.sin, lambda v: np.cos(v) * (1 + error))
    report = gradcheck(wrong, RNG.uniform(0.2, 1.2, (3, 4)))      # cos well away from 0
    assert not report.passed and report.tensors[0].status == "fail", report
    assert report.tensors[0].max_rel_error == pytest.approx(abs(error), rel=0.05)
