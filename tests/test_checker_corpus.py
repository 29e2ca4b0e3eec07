"""The checker on its corpus (tests/checker_corpus.py): every broken layer fails, every
correct but awkward one passes, and a failure says what is wrong (a problem or a failing
tensor, never a crash)."""

import pytest

from layerkit import gradcheck

from checker_corpus import BROKEN, CORRECT


@pytest.mark.parametrize("name, make", BROKEN, ids=[n for n, _ in BROKEN])
def test_broken_layer_fails(name, make):
    layer, inputs = make()
    report = gradcheck(layer, inputs)
    assert not report.passed, f"{name}: missed\n{report}"
    assert report.problems or any(t.status == "fail" for t in report.tensors), report


@pytest.mark.parametrize("name, make", CORRECT, ids=[n for n, _ in CORRECT])
def test_correct_layer_passes(name, make):
    layer, inputs = make()
    report = gradcheck(layer, inputs)
    assert report.passed, f"{name}: false alarm\n{report}"


# The pattern each broken layer must be named with (the others fail with "no simple pattern"
# and their worst elements listed).
NAMED = {
    "assigned, not accumulated": "assigned, not accumulated",
    "grads replaced": "grads replaced",
    "cache rewritten by backward": "not reentrant",
    "cache from the first call": "stale cache",
    "backward clears its cache": "not reentrant",
    "dy modified in place": "modifies dy in place",
    "x modified by backward": "modifies input in place",
    "max routing dy to every tie": "scaled by 2",
    "batch norm without the mean term": "offset along axis 0",
    "softmax without 1/τ": "scaled by 1/2",
    "leaky slope 0.1 instead of 0.01": "scaled by 10 where wrong",
    "weight gradient transposed": "transposed",
    "last window row skipped": "borders only",
    "ReLU mask inverted": "inverted mask",
    "bias gradient of shape (1, C)": "wrong shape",
    "backward ignores dy": "ignores dy",
    "a term independent of dy": "not linear in dy",
    "gradient of the second input missing": "wrong shape",
    "BPTT without dh from t+1": "some time steps",
    "dropout mask drawn again in backward": "not reentrant",
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_broken_layer_is_named(name):
    layer, inputs = dict(BROKEN)[name]()
    report = gradcheck(layer, inputs)
    found = {p.pattern for p in report.problems} | {t.pattern for t in report.tensors}
    assert NAMED[name] in found, f"{name}: named {found}\n{report}"
