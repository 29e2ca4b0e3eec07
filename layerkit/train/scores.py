"""Scores of structured predictions: corpus BLEU-4 of token sequences, mean intersection over
union of label maps."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..validation import check_array, positive_int

__all__ = ["bleu", "confusion_matrix", "iou_per_class", "mean_iou"]


def _ngrams(tokens: tuple, n: int) -> Counter:
    return Counter(tokens[i:i + n] for i in range(len(tokens) - n + 1))


def bleu(references, hypotheses, *, max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al. 2002) with one reference per hypothesis, uniform weights.

        p_n = Σ_s Σ_g min(count_hyp_s(g), count_ref_s(g)) / Σ_s Σ_g count_hyp_s(g)
              over the n-grams g of each hypothesis s (clipped counts), n = 1 … max_n
        BP = 1 if c > r else exp(1 − r / c),   c, r = total hypothesis / reference length
        BLEU = BP · exp((1 / max_n) Σ_n log p_n)        (0 when any p_n is 0, or c = 0)

    Parameters
    ----------
    references, hypotheses : sequences of token sequences
        Same number of each; tokens are any hashable values (ids or words).
    """
    who = "bleu"
    max_n = positive_int(who, "max_n", max_n)
    refs, hyps = [tuple(r) for r in references], [tuple(h) for h in hypotheses]
    if len(refs) != len(hyps):
        raise ValueError(f"{who}: expected as many references as hypotheses, got {len(refs)} "
                         f"and {len(hyps)}")
    matched, total = [0] * max_n, [0] * max_n
    for ref, hyp in zip(refs, hyps):
        for n in range(1, max_n + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            matched[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            total[n - 1] += sum(h.values())
    c, r = sum(map(len, hyps)), sum(map(len, refs))
    if c == 0 or min(matched) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matched, total)) / max_n
    brevity = 1.0 if c > r else math.exp(1.0 - r / c)
    return brevity * math.exp(log_p)


def confusion_matrix(predicted: np.ndarray, target: np.ndarray, num_classes: int,
                     ignore_index=None) -> np.ndarray:
    """counts[k, j] = number of positions with target k and prediction j (int64, (K, K)).
    Positions whose target is ``ignore_index`` are left out."""
    who = "confusion_matrix"
    K = positive_int(who, "num_classes", num_classes)
    check_array(who, target, (...,), name="target", kind="int")
    check_array(who, predicted, target.shape, name="predicted", kind="int")
    keep = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    t, p = target[keep].ravel(), predicted[keep].ravel()
    for name, a in (("target", t), ("predicted", p)):
        if a.size and (a.min() < 0 or a.max() >= K):
            raise ValueError(f"{who}: expected {name} classes in [0, {K}), got values from "
                             f"{a.min()} to {a.max()}")
    return np.bincount(t * K + p, minlength=K * K).reshape(K, K).astype(np.int64)


def iou_per_class(counts: np.ndarray) -> np.ndarray:
    """IoU_k = TP_k / (TP_k + FP_k + FN_k) from a confusion matrix (rows: target); NaN for a
    class that is neither in the target nor predicted."""
    counts = np.asarray(counts, dtype=np.float64)
    tp = np.diag(counts)
    union = counts.sum(axis=0) + counts.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1.0), np.nan)


def mean_iou(predicted: np.ndarray, target: np.ndarray, num_classes: int,
             ignore_index=None) -> float:
    """Mean over classes of IoU_k (see :func:`iou_per_class`), counted over all positions of
    the whole set at once; classes absent from both target and prediction are left out."""
    iou = iou_per_class(confusion_matrix(predicted, target, num_classes, ignore_index))
    present = ~np.isnan(iou)
    return float(iou[present].mean()) if present.any() else float("nan")
