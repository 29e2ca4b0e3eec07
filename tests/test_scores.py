"""BLEU and IoU against hand-worked examples."""

import math

import numpy as np
import pytest

from layerkit.train.scores import bleu, confusion_matrix, iou_per_class, mean_iou


def test_bleu4_hand_example():
    # hypothesis a b c d x f against reference a b c d e f:
    # 1-grams 5/6 (x unmatched), 2-grams ab bc cd of ab bc cd dx xf: 3/5,
    # 3-grams abc bcd of 4: 2/4, 4-grams abcd of 3: 1/3; c = r = 6 -> BP = 1
    got = bleu([list("abcdef")], [list("abcdxf")])
    assert got == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, rel=1e-12)
    assert got == pytest.approx(0.537284965911771, rel=1e-12)        # (1/12)^(1/4)


def test_bleu_pools_counts_over_the_corpus_and_clips():
    refs, hyps = [["x", "y"], ["a", "b", "c", "d"]], [["x", "x", "x", "x"], ["a", "b"]]
    # 1-grams: x clipped to 1 of 4, a b 2 of 2 -> 3/6; 2-grams: xx ×3 none, ab 1 -> 1/4
    # c = 6, r = 6 -> BP = 1
    assert bleu(refs, hyps, max_n=2) == pytest.approx(math.sqrt(3 / 6 * 1 / 4), rel=1e-12)


def test_bleu_brevity_penalty_and_zero_cases():
    # a b against a b c d: p1 = 2/2, p2 = 1/1, c = 2 < r = 4 -> BP = exp(1 - 4/2) = e^-1
    assert bleu([list("abcd")], [list("ab")], max_n=2) == pytest.approx(math.exp(-1), rel=1e-12)
    assert bleu([list("abcd")], [list("ab")]) == 0.0          # no 3-gram: p3 = 0
    assert bleu([list("ab")], [[]]) == 0.0
    assert bleu([list("abcd")], [list("abcd")]) == 1.0
    with pytest.raises(ValueError, match="bleu: expected as many references as hypotheses"):
        bleu([[1]], [[1], [2]])


def test_iou_hand_example():
    target = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    counts = confusion_matrix(pred, target, 4)
    assert counts.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    iou = iou_per_class(counts)
    # class 0: TP 1, FP 1 (at (1,2)), FN 1 (at (0,1)) -> 1/3; class 1: TP 2, FP 1 -> 2/3;
    # class 2: TP 1, FN 1 -> 1/2; class 3 absent everywhere -> NaN, left out of the mean
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 1 / 2], rtol=1e-15)
    assert np.isnan(iou[3])
    assert mean_iou(pred, target, 4) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3, rel=1e-15)
    # ignoring the target's class-2 positions removes them from every count
    assert confusion_matrix(pred, target, 4, ignore_index=2).sum() == 4


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match=r"confusion_matrix: expected target classes in \[0, 2\)"):
        confusion_matrix(np.array([0, 1]), np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="predicted"):
        confusion_matrix(np.array([0, 1, 1]), np.array([0, 1]), 2)
