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
