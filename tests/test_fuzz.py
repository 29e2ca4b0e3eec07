"""Fuzzing every public layer and loss (tests/fuzz_corpus.py): every input gets the right
answer or a clear error naming the layer. The fixed corpus runs in full; hypothesis draws
further shapes, scales, extreme values and hyperparameters around it."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fuzz_corpus as fc
from layer_cases import CASES

GOOD = ("correct", "clear")


def _groups():
    groups = {}
    for label, thunk in fc.corpus():
        groups.setdefault(label.split(" ")[0].split("(")[0], []).append((label, thunk))
    return groups


GROUPS = _groups()


@pytest.mark.parametrize("who", sorted(GROUPS))
def test_corpus_gets_right_answers_or_clear_errors(who):
    bad = []
    for label, thunk in GROUPS[who]:
        result = thunk()
        if result is not None and result[0] not in GOOD:
            bad.append(f"{label}: {result[0]} ({result[1][:200]})")
    assert not bad, "\n".join(bad)


def test_corpus_covers_every_public_layer_and_loss():
    import inspect

    import layerkit as lk
    public = {n for n in dir(lk) if inspect.isclass(getattr(lk, n))
              and issubclass(getattr(lk, n), lk.Layer) and n not in ("Layer", "Container")}
    covered = {type(c.make(np.float64)).__name__ for c in CASES} | {n for n, *_ in fc.HYPER}
    assert public <= covered, public - covered
    assert set(fc.LOSSES) == {"CrossEntropy", "MSE", "BCEWithLogits"}


@given(case=st.sampled_from(CASES), layout=st.sampled_from(sorted(fc.LAYOUTS)),
       seed=st.integers(0, 2**16), exponent=st.sampled_from([-300, -30, -3, 0, 3, 30, 150]),
       batch=st.integers(0, 3))
def test_layouts_scales_and_batch_sizes(case, layout, seed, exponent, batch):
    outcome, detail = fc.probe_layout(case, layout, seed, 10.0 ** exponent, batch)
    assert outcome in GOOD, detail


TORCH_CASES = [c for c in CASES if c.name in (
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "MaxPool2D", "AvgPool2D",
    "GlobalAvgPool", "Flatten", "Identity", "Linear", "Linear3d", "Conv2D", "Conv2DWinograd",
    "Conv2DWinogradUnpadded")]


@given(case=st.sampled_from(TORCH_CASES), label=st.sampled_from(sorted(fc.EXTREMES)),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_extreme_values_match_torch(case, label, dtype):
    from helpers import torch_or_skip
    torch_or_skip()
    outcome, detail = fc.probe_extreme(case, label, dtype)
    assert outcome in GOOD, detail


@given(index=st.integers(0, len(fc.HYPER) - 1),
       value=st.one_of(st.integers(-3, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                       st.text(max_size=2), st.booleans(), st.none(),
                       st.lists(st.integers(0, 3), max_size=3)))
def test_hyperparameters(index, value):
    outcome, detail = fc.probe_hyper(index, value)
    assert outcome in GOOD, (fc.HYPER[index][0], fc.HYPER[index][2], value, detail)
