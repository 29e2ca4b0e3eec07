"""Contract checks across every public layer: backward validates dy, empty batches give empty
outputs, and changing x after forward does not change the gradients."""

import numpy as np
import pytest

from layer_cases import CASES, example_input, output

IDS = [c.name for c in CASES]


def _forward(case, dtype=np.float64, shape=None, *, training=True, seed=0):
    layer = case.make(dtype)
    layer.train(training)
    x = example_input(case, np.random.default_rng(seed), dtype, shape)
    return layer, x, output(layer.forward(x))


def _name(layer) -> str:
    return type(layer).__name__


def _bad_dy(y):
    return {
        "complex": y.astype(np.complex128),
        "object": y.astype(object),
        "int": np.ones(y.shape, dtype=np.int64),
        "bool": np.ones(y.shape, dtype=bool),
        "list": y.tolist(),
        "extra axis": y[None],
        "broadcastable": y[:1],
        "float16": y.astype(np.float16),
    }


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_refuses_bad_dy_naming_the_layer(case):
    layer, _, y = _forward(case)
    for label, dy in _bad_dy(y).items():
        if label == "broadcastable" and y.shape[0] == 1:
            continue
        with pytest.raises((TypeError, ValueError), match=_name(layer)) as err:
            layer.backward(dy)
        assert "dy" in str(err.value), (label, str(err.value))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_takes_float32_and_float64_dy(case):
    for dt in (np.float32, np.float64):
        layer, _, y = _forward(case, dt)
        dx = layer.backward(np.ones(y.shape, dtype=dt))
        if dx is not None:
            assert dx.dtype == dt and dx.shape == case.shape


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_empty_batch_gives_empty_outputs(case):
    """N = 0: forward and backward return empty arrays with the trailing axes of a batch of 2,
    as PyTorch does (BatchNorm in training raises: no statistics to take; in eval it works)."""
    _, _, y2 = _forward(case)
    shape = (0,) + case.shape[1:]
    training = not case.name.startswith("BatchNorm")
    layer, x, y = _forward(case, shape=shape, training=training)
    assert y.shape == (0,) + y2.shape[1:]
    dx = layer.backward(np.zeros(y.shape))
    if case.ids:
        assert dx is None
    else:
        assert dx.shape == x.shape and dx.dtype == x.dtype


@pytest.mark.parametrize("case", [c for c in CASES if c.name.startswith("BatchNorm")],
                         ids=lambda c: c.name)
def test_batchnorm_empty_batch_in_training_is_a_clear_error(case):
    with pytest.raises(ValueError, match=r"BatchNorm.D\(.*more than 1 value per channel"):
        _forward(case, shape=(0,) + case.shape[1:])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_changing_x_after_forward_changes_no_gradient(case):
    """y = f(x); x[...] = 7; backward(dy): the same gradients as without the change."""
    results = []
    for mutate in (False, True):
        layer, x, y = _forward(case)
        if mutate:
            x[...] = 1 if case.ids else 7
        dy = np.random.default_rng(1).standard_normal(y.shape)
        dx = layer.backward(dy)
        results.append((None if dx is None else dx.copy(),
                        {k: g.copy() for k, g in layer.grads.items()}))
    (dx0, g0), (dx1, g1) = results
    if dx0 is not None:
        np.testing.assert_array_equal(dx1, dx0)
    assert g0.keys() == g1.keys()
    for k in g0:
        np.testing.assert_array_equal(g1[k], g0[k], err_msg=k)
