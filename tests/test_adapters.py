"""Course formats checked from Python through ``as_layer``: the homework-style files in
tests/homework (written for these tests) pass when correct and fail when they hold one of the
classic mistakes, named where the diagnosis has a pattern for it."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from layerkit import Linear
from layerkit.check import as_layer, gradcheck
from layerkit.check.adapters import (AdapterError, AttributeLayer, FunctionPair, LossFunction,
                                     name_report)

HOMEWORK = Path(__file__).parent / "homework"


@pytest.fixture(scope="module")
def hw():
    """The homework modules: cs231n_layers, cs231n_broken, mytorch_layers, layer_contract."""
    sys.path.insert(0, str(HOMEWORK))
    try:
        yield {name: importlib.import_module(name) for name in
               ("cs231n_layers", "cs231n_broken", "mytorch_layers", "layer_contract")}
    finally:
        sys.path.remove(str(HOMEWORK))


def _draw(seed=0, **shapes):
    """Standard normal arrays of the given shapes (an int entry: labels in [0, 4))."""
    rng = np.random.default_rng(seed)
    return {k: rng.integers(0, 4, v[1]) if v[0] == "int" else rng.standard_normal(v)
            for k, v in shapes.items()}


CONV = {"stride": 2, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}
FUNCTIONS = {   # forward name -> (arrays, fixed)
    "affine_forward": (dict(x=(2, 3, 4), w=(12, 5), b=(5,)), {}),
    "relu_forward": (dict(x=(3, 4)), {}),
    "leaky_relu_forward": (dict(x=(3, 4)), {"lrelu_param": {"alpha": 0.1}}),
    "conv_forward_naive": (dict(x=(2, 3, 7, 7), w=(4, 3, 3, 3), b=(4,)), {"conv_param": CONV}),
    "max_pool_forward_naive": (dict(x=(2, 2, 6, 6)), {"pool_param": POOL}),
    "batchnorm_forward": (dict(x=(5, 4), gamma=(4,), beta=(4,)), {"bn_param": {}}),
    "softmax_loss": (dict(x=(5, 4), y=("int", 5)), {}),
    "rnn_step_forward": (dict(x=(3, 4), prev_h=(3, 5), Wx=(4, 5), Wh=(5, 5), b=(5,)), {}),
    "rnn_forward": (dict(x=(2, 4, 3), h0=(2, 5), Wx=(3, 5), Wh=(5, 5), b=(5,)), {}),
    "lstm_step_forward": (dict(x=(3, 4), prev_h=(3, 5), prev_c=(3, 5), Wx=(4, 20), Wh=(5, 20),
                               b=(20,)), {}),
    "lstm_forward": (dict(x=(2, 4, 3), h0=(2, 5), Wx=(3, 20), Wh=(5, 20), b=(20,)), {}),
}


def _check_function(module, name, backward=None, seed=0):
    shapes, fixed = FUNCTIONS[name]
    layer = as_layer(getattr(module, name), arrays=_draw(seed, **shapes), fixed=fixed,
                     backward=backward)
    return layer, name_report(gradcheck(layer, layer.inputs), layer)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_correct_function_homework_passes(hw, name):
    layer, report = _check_function(hw["cs231n_layers"], name)
    assert isinstance(layer, LossFunction if name == "softmax_loss" else FunctionPair)
    assert report.passed, str(report)
    floats = [n for n in layer.input_names if n != "y"]
    assert [t.name for t in report.tensors] == floats


# (forward, broken backward, expected pattern per tensor or problem; None: fails, no name yet)
BROKEN_FUNCTIONS = [
    ("affine_forward", "affine_backward_dx_not_reshaped", {"problem": "wrong shape"}),
    ("conv_forward_naive", "conv_backward_stride_ignored", None),
    ("conv_forward_naive", "conv_backward_last_row_skipped", {"x": "borders only"}),
    ("max_pool_forward_naive", "max_pool_backward_argmax_swapped", None),
    ("batchnorm_forward", "batchnorm_backward_mean_term_missing", {"x": "offset along axis 0"}),
    ("relu_forward", "relu_backward_mask_inverted", {"x": "inverted mask"}),
    ("rnn_forward", "rnn_backward_without_dh_next", {"x": "some time steps"}),
    ("lstm_forward", "lstm_backward_without_cell_path", {"x": "some time steps"}),
]


@pytest.mark.parametrize("forward, backward, expected", BROKEN_FUNCTIONS,
                         ids=[b for _, b, _ in BROKEN_FUNCTIONS])
def test_broken_function_homework_fails(hw, forward, backward, expected):
    _, report = _check_function(hw["cs231n_layers"], forward,
                                backward=getattr(hw["cs231n_broken"], backward))
    assert not report.passed
    for t in report.tensors:
        if not t.passed:
            assert t.diagnosis.startswith(f"the gradient of {t.name} returned by {backward} ")
    patterns = {t.name: t.pattern for t in report.tensors if not t.passed}
    patterns["problem"] = [p.pattern for p in report.problems]
    for name, pattern in (expected or {}).items():
        assert pattern in patterns[name] if name == "problem" else patterns[name] == pattern, \
            str(report)


def test_loss_function_without_the_true_class_term_fails(hw):
    shapes, fixed = FUNCTIONS["softmax_loss"]
    layer = as_layer(hw["cs231n_broken"].softmax_loss_true_class_missing,
                     arrays=_draw(**shapes))
    report = name_report(gradcheck(layer, layer.inputs), layer)
    assert not report.passed and report.tensors[0].name == "x"
    assert report.tensors[0].status == "fail"
    assert report.tensors[0].pattern == "one element per row"


def test_inputs_given_in_order_split_arrays_from_hyperparameters(hw):
    arrays = _draw(x=(2, 3, 7, 7), w=(4, 3, 3, 3), b=(4,))
    layer = as_layer(hw["cs231n_layers"].conv_forward_naive,
                     (arrays["x"], arrays["w"], arrays["b"], CONV))
    assert layer.input_names == ("x", "w", "b") and layer.fixed == {"conv_param": CONV}
    assert repr(layer) == ("conv_forward_naive(x, w, b, conv_param={'stride': 2, 'pad': 1}) / "
                           "conv_backward_naive")
    assert gradcheck(layer, layer.inputs).passed


def test_hyperparameter_dict_is_fresh_at_every_call(hw):
    """batchnorm_forward writes running_mean into bn_param: each call gets its own copy."""
    bn_param = {}
    shapes, _ = FUNCTIONS["batchnorm_forward"]
    layer = as_layer(hw["cs231n_layers"].batchnorm_forward, arrays=_draw(**shapes),
                     fixed={"bn_param": bn_param})
    layer.forward(*layer.inputs)
    assert bn_param == {}


def test_function_pair_errors_name_the_functions():
    def square_forward(x):
        return x ** 2, x

    def square_backward(dout, cache):
        return 2 * cache * dout, cache

    def unfinished_backward(dout, cache):
        return None

    x = np.ones((2, 2))
    layer = FunctionPair(square_forward, square_backward, {"x": x})
    layer.forward(x)
    with pytest.raises(AdapterError, match=r"square_backward returned 2 gradient\(s\), but "
                                           r"square_forward has 1 .*\(x\).*: dx"):
        layer.backward(x)
    layer = FunctionPair(square_forward, unfinished_backward, {"x": x})
    layer.forward(x)
    with pytest.raises(NotImplementedError, match="unfinished_backward returned None"):
        layer.backward(x)
    with pytest.raises(AdapterError, match=r"square_forward\(x\): no value for x"):
        FunctionPair(square_forward, square_backward, {})
    with pytest.raises(AdapterError, match="no backward partner: no function square_backward"):
        as_layer(square_forward, (x,))


def test_layer_contract_objects_are_returned_as_they_are():
    layer = Linear(3, 2, dtype=np.float64)
    assert as_layer(layer) is layer


# -- attribute style ------------------------------------------------------------------------------

def _check_object(obj, *inputs, **kwargs):
    layer = as_layer(obj, inputs, **kwargs)
    return layer, name_report(gradcheck(layer, inputs), layer)


@pytest.fixture
def seeded():
    np.random.seed(0)


def test_attribute_linear_passes_and_reads_dLdW(hw, seeded):
    layer, report = _check_object(hw["mytorch_layers"].Linear(4, 3), _draw(A=(5, 4))["A"])
    assert isinstance(layer, AttributeLayer) and repr(layer) == "Linear"
    assert layer.grad_names == {"W": "dLdW", "b": "dLdb"}
    assert report.passed, str(report)
    assert [t.name for t in report.tensors] == ["A", "W", "b"]


def test_cell_with_two_inputs_and_d_prefixed_gradients(hw, seeded):
    x = _draw(x=(3, 4), h=(3, 5))
    layer, report = _check_object(hw["mytorch_layers"].RNNCell(4, 5), x["x"], x["h"])
    assert layer.input_names == ("x", "h_prev_t")
    assert layer.grad_names == {"W_ih": "dW_ih", "W_hh": "dW_hh", "b_ih": "db_ih",
                                "b_hh": "db_hh"}
    assert report.passed, str(report)
    assert [t.name for t in report.tensors] == ["x", "h_prev_t", "W_ih", "W_hh", "b_ih", "b_hh"]


def test_parameters_on_sub_objects_are_found(hw, seeded):
    conv = hw["mytorch_layers"].Conv1d(2, 3, 3, 2)
    layer, report = _check_object(conv, _draw(A=(2, 2, 9))["A"])
    assert layer.grad_names == {"conv1d_stride1.W": "conv1d_stride1.dLdW",
                                "conv1d_stride1.b": "conv1d_stride1.dLdb"}
    assert layer.params["conv1d_stride1.W"] is conv.conv1d_stride1.W
    assert report.passed, str(report)


def test_kernel_not_flipped_fails_on_the_input_gradient(hw, seeded):
    _, report = _check_object(hw["mytorch_layers"].Conv1dNotFlipped(2, 3, 3, 2),
                              _draw(A=(2, 2, 9))["A"])
    assert [(t.name, t.status) for t in report.tensors if not t.passed] == [("A", "fail")]


def test_batch_norm_running_statistics_are_left_unchecked(hw):
    layer, report = _check_object(hw["mytorch_layers"].BatchNorm1d(4), _draw(Z=(6, 4))["Z"])
    assert report.passed, str(report)
    assert set(layer.params) == {"BW", "Bb"}
    assert layer.notes == ["not checked (no dLd<name> or d<name> after backward): running_M, "
                           "running_V"]


def test_gradient_with_size_1_axes_dropped_is_reshaped_with_a_note(hw, seeded):
    layer, report = _check_object(hw["mytorch_layers"].LinearFlatBias(4, 3),
                                  _draw(A=(5, 4))["A"])
    assert report.passed, str(report)
    assert layer.notes == ["dLdb has shape (3,), b has (3, 1): checked after reshaping (the same "
                           "elements); an update b -= lr * dLdb would broadcast to (3, 3)"]


def test_transposed_weight_gradient_is_wrong_shape_not_a_crash(hw, seeded):
    layer, report = _check_object(hw["mytorch_layers"].LinearWeightTransposed(4, 3),
                                  _draw(A=(5, 4))["A"])
    assert not report.passed
    w = next(t for t in report.tensors if t.name == "W")
    assert w.pattern == "wrong shape" and "dLdW has shape (4, 3), but W has (3, 4)" in w.diagnosis
    assert "transposed" in w.diagnosis
    assert [p.pattern for p in report.problems] == ["wrong shape"]


def test_transposed_square_weight_gradient_is_named(hw, seeded):
    _, report = _check_object(hw["mytorch_layers"].LinearWeightTransposed(4, 4),
                              _draw(A=(5, 4))["A"])
    w = next(t for t in report.tensors if t.name == "W")
    assert w.pattern == "transposed" and w.diagnosis.startswith("dLdW matches")


def test_batch_mean_convention_is_named_and_checked_with_the_option(hw, seeded):
    A = _draw(A=(5, 4))["A"]
    _, report = _check_object(hw["mytorch_layers"].LinearBatchMean(4, 3), A)
    failing = {t.name: t for t in report.tensors if not t.passed}
    assert set(failing) == {"W", "b"}
    assert failing["W"].pattern == "scaled by 1/5"
    assert "The factor is 1/N for the batch of N = 5" in failing["W"].diagnosis
    assert "--batch-mean" in failing["W"].diagnosis
    _, report = _check_object(hw["mytorch_layers"].LinearBatchMean(4, 3), A, batch_mean=True)
    assert report.passed, str(report)


def test_assigned_gradient_is_accumulated_by_the_adapter(hw, seeded):
    """The course assigns dLdW at each backward; the adapter presents grads that add up."""
    A = _draw(A=(5, 4))["A"]
    layer = as_layer(hw["mytorch_layers"].Linear(4, 3), (A,))
    dZ = np.ones((5, 3))
    layer.zero_grad()
    layer.forward(A)
    layer.backward(dZ)
    layer.backward(dZ)
    np.testing.assert_allclose(layer.grads["W"], 2 * dZ.T @ A)
    layer.zero_grad()
    assert not layer.grads["W"].any()


def test_global_random_state_is_frozen_for_each_forward(hw):
    x = _draw(x=(4, 6))["x"]
    layer, report = _check_object(hw["mytorch_layers"].Dropout(0.5), x)
    assert np.array_equal(layer.forward(x), layer.forward(x))
    assert report.passed, str(report)


def test_no_gradient_attribute_is_a_problem_that_says_where_it_is_read(hw, seeded):
    layer, report = _check_object(hw["mytorch_layers"].NoGradient(3), _draw(A=(2, 3))["A"])
    assert not report.passed
    (problem,) = [p for p in report.problems if p.pattern == "missing gradient"]
    assert "no gradient attribute for any of its arrays (W)" in problem
    assert "dLdP or dP (e.g. self.dLdW)" in problem


def test_parameterless_attribute_layer_passes(hw):
    layer, report = _check_object(hw["mytorch_layers"].ReLU(), _draw(Z=(3, 4))["Z"])
    assert layer.params == {} and report.passed


def test_zero_initialised_attribute_layer_passes(hw):
    _, report = _check_object(hw["mytorch_layers"].LinearZeroInit(4, 3), _draw(A=(5, 4))["A"])
    assert report.passed, str(report)


def test_assigned_instead_of_accumulated_fails(hw):
    layer = hw["layer_contract"].ScaleAssigned(3)
    assert not gradcheck(layer, _draw(x=(5, 3))["x"]).passed


def test_gradcheck_labels_inputs_by_their_argument_names(hw):
    shapes, fixed = FUNCTIONS["rnn_step_forward"]
    layer = as_layer(hw["cs231n_layers"].rnn_step_forward, arrays=_draw(**shapes))
    report = gradcheck(layer, layer.inputs)
    assert [t.name for t in report.tensors] == ["x", "prev_h", "Wx", "Wh", "b"]
