"""CaptionNet and beam search: shapes, gradient checks, decoding against a plain loop over
forward, beam search on a hand-built Markov model, checkpoints."""

import numpy as np
import pytest

from layerkit.checkpoint import load, save
from layerkit.models import CaptionNet, beam_search, build
from layerkit.testing import assert_gradients_match

F64 = np.float64
BOS, EOS, PAD = 1, 2, 0


def tiny(**kw):
    kw = {"image_shape": (1, 4, 8), "channels": (2,), "feature_size": 3, "embedding_dim": 2,
          "hidden_size": 3, **kw}
    return CaptionNet(7, **kw)


def images(n, shape=(1, 4, 8), dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype(dtype)


def test_forward_backward_shapes_and_spec():
    m = CaptionNet(13, seed=1)
    x = images(2, (1, 28, 112))
    tokens = np.array([[1, 5, 7, 2, 0], [1, 3, 2, 0, 0]])
    y = m.forward(x, tokens)
    assert y.shape == (2, 5, 13) and y.dtype == np.float32
    assert m.backward(np.ones_like(y)) is None            # images are data by default
    m.needs_input_grad = True
    m.forward(x, tokens)
    assert m.backward(np.ones_like(y)).shape == x.shape
    again = build(m.spec)
    assert {k: v.shape for k, v in again.params.items()} == {k: v.shape
                                                              for k, v in m.params.items()}
    assert m.params["decoder.weight_ih"].shape[1] == 32 + 128           # E + F: features fed
    assert CaptionNet(13, feed_features=False).params["decoder.weight_ih"].shape[1] == 32


@pytest.mark.parametrize("feed", [True, False])
def test_gradcheck(feed):
    m = tiny(feed_features=feed, dtype=F64)
    tokens = np.random.default_rng(1).integers(0, 7, (2, 3))
    report = assert_gradients_match(m, (images(2, dtype=F64), tokens))
    names = {t.name for t in report.tensors}
    assert {"encoder.0.weight", "init_state.weight", "embedding.weight", "decoder.weight_hh",
            "head.weight"} <= names


def test_bad_inputs_are_named():
    m = tiny()
    with pytest.raises(ValueError, match=r"CaptionNet\(.*images of shape \(N, 1, 4, 8\)"):
        m.forward(images(2, (1, 4, 9)), np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"tokens_in in \[0, 7\)"):
        m.forward(images(2), np.full((2, 3), 7))
    with pytest.raises(ValueError, match="divisible by 2"):
        CaptionNet(7, image_shape=(1, 5, 8), channels=(2,))
    with pytest.raises(ValueError, match="beam_size must be at most the vocabulary size 7"):
        m.beam_decode(images(1), 3, BOS, EOS, beam_size=8)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        tiny().backward(np.zeros((1, 1, 7), np.float32))


def plain_greedy(model, x, max_len):
    """Greedy decoding by re-running forward on the growing prefix (teacher-forced forward):
    the arg max of the last position's logits is the next token."""
    out = []
    for i in range(len(x)):
        prefix, ids = [BOS], []
        for _ in range(max_len):
            logits = model.forward(x[i:i + 1], np.array([prefix]))
            nxt = int(np.argmax(logits[0, -1]))
            ids.append(nxt)
            if nxt == EOS:
                break
            prefix.append(nxt)
        out.append(ids + [PAD] * (max_len - len(ids)))
    return np.array(out)


def test_greedy_and_beam_size_1_equal_a_plain_loop_over_forward():
    m = tiny(dtype=F64, seed=3)
    for p in m.params.values():                       # sharper distributions than at init
        p *= 3
    x = images(6, dtype=F64, seed=2)
    want = plain_greedy(m, x, 5)
    assert np.array_equal(m.greedy_decode(x, 5, BOS, EOS), want)
    assert np.array_equal(m.beam_decode(x, 5, BOS, EOS, beam_size=1), want)
    assert len({tuple(r) for r in want}) > 1           # the check can fail: not one constant row


def test_beam_scores_are_the_log_probabilities_of_the_captions():
    m = tiny(dtype=F64, seed=4)
    for p in m.params.values():
        p *= 3
    x = images(5, dtype=F64, seed=5)
    for beam in (1, 3):
        ids, scores = m.beam_decode(x, 4, BOS, EOS, beam_size=beam, return_scores=True)
        captions = np.concatenate([np.full((5, 1), BOS), ids], axis=1)
        # log_prob leaves out the PAD positions after EOS, as beam search scores them 0
        np.testing.assert_allclose(m.log_prob(x, captions), scores, rtol=1e-12)


def test_decoding_keeps_a_pending_backward():
    m = tiny(dtype=F64)
    x, tokens = images(2, dtype=F64), np.array([[1, 3, 4], [1, 5, 2]])
    y = m.forward(x, tokens)
    m.zero_grad()
    m.backward(np.ones_like(y))
    want = {k: v.copy() for k, v in m.grads.items()}
    m.zero_grad()
    m.forward(x, tokens)
    m.beam_decode(images(3, dtype=F64, seed=9), 4, BOS, EOS, beam_size=2)
    m.backward(np.ones_like(y))
    for k in want:
        assert np.array_equal(m.grads[k], want[k]), k


# -- beam search on a hand-built Markov chain -----------------------------------------------

A, B = 3, 4
TABLE = np.full((5, 5), 1e-9)       # next-token probabilities given the last token
TABLE[BOS, [A, B]] = 0.6, 0.4
TABLE[A, [EOS, A, B]] = 0.3, 0.36, 0.34
TABLE[B, [EOS, A, B]] = 0.9, 0.05, 0.05
TABLE[[PAD, EOS]] = 0.2
TABLE /= TABLE.sum(axis=1, keepdims=True)


def markov_step(tokens, state):
    return np.log(TABLE[tokens]), state


def test_beam_search_finds_a_better_sequence_than_greedy():
    state = (np.zeros((1, 1)),)
    greedy, g_score = beam_search(markov_step, state, 1, 4, BOS, EOS, beam_size=1,
                                  vocab_size=5, pad=PAD)
    beam, b_score = beam_search(markov_step, state, 1, 4, BOS, EOS, beam_size=2,
                                vocab_size=5, pad=PAD)
    # greedy: A (0.6), then A (0.36) each time, never EOS within 4 steps
    assert greedy.tolist() == [[A, A, A, A]]
    np.testing.assert_allclose(g_score, [np.log(TABLE[BOS, A] * TABLE[A, A] ** 3)])
    # beam: B then EOS, 0.4 · 0.9 = 0.36 > 0.6 · 0.36³
    assert beam.tolist() == [[B, EOS, PAD, PAD]]
    np.testing.assert_allclose(b_score, [np.log(TABLE[BOS, B] * TABLE[B, EOS])])
    assert b_score[0] > g_score[0]


def history_logp(prefix):
    """A next-token distribution that depends on the whole prefix (BOS first)."""
    key = sum((i + 1) * 7 ** j for j, i in enumerate(prefix)) % 9973
    logits = np.random.default_rng(key).standard_normal(5) * 2
    logits[EOS] -= 1.5 if len(prefix) < 3 else -1.0
    return logits - np.log(np.exp(logits).sum())


def plain_beam(prefix_logp, max_len, beam_size):
    """Beam search with lists: (score, sequence) pairs, every prefix scored from scratch."""
    beams = [(0.0, [BOS], False)]
    for _ in range(max_len):
        cands = []
        for b, (score, seq, done) in enumerate(beams):
            if done:
                cands.append((score, b, PAD, seq + [PAD], True))
                continue
            lp = prefix_logp(seq)
            cands += [(score + lp[v], b, v, seq + [v], v == EOS) for v in range(len(lp))]
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        beams = [(c[0], c[3], c[4]) for c in cands[:beam_size]]
        if all(d for _, _, d in beams):
            break
    best = max(beams, key=lambda b: b[0])        # first of equal scores
    seq = best[1][1:]
    return seq + [PAD] * (max_len - len(seq)), best[0]


@pytest.mark.parametrize("beam_size", [1, 2, 3, 5])
def test_beam_search_equals_a_plain_list_beam_search(beam_size):
    """The state follows each surviving beam: here the state is the whole history, and the
    distribution depends on all of it, so a state left in another beam's row changes the
    result."""
    def step(tokens, state):
        (hist,) = state
        hist = np.concatenate([hist, tokens[:, None]], axis=1)
        return np.array([history_logp(list(h)) for h in hist]), (hist,)

    ids, scores = beam_search(step, (np.zeros((1, 0), np.int64),), 1, 6, BOS, EOS,
                              beam_size=beam_size, vocab_size=5, pad=PAD)
    want, score = plain_beam(history_logp, 6, beam_size)
    assert ids[0].tolist() == want
    np.testing.assert_allclose(scores[0], score, rtol=1e-12)


def test_checkpoint_restores_captions_bit_for_bit(tmp_path):
    m = CaptionNet(13, image_shape=(1, 28, 56), channels=(4,), feature_size=8,
                   embedding_dim=4, hidden_size=8, seed=2)
    rng = np.random.default_rng(0)
    for p in m.params.values():
        p += 0.05 * rng.standard_normal(p.shape).astype(p.dtype)
    save(m, tmp_path / "c.npz")
    loaded = load(tmp_path / "c.npz")
    x, tokens = images(3, (1, 28, 56)), rng.integers(0, 13, (3, 4))
    assert np.array_equal(loaded.forward(x, tokens), m.forward(x, tokens))
    assert np.array_equal(loaded.beam_decode(x, 5, BOS, EOS, beam_size=3),
                          m.beam_decode(x, 5, BOS, EOS, beam_size=3))
    fresh = CaptionNet(13, image_shape=(1, 28, 56), channels=(4,), feature_size=8,
                       embedding_dim=4, hidden_size=8, seed=2)
    assert not np.array_equal(fresh.forward(x, tokens), m.forward(x, tokens))
