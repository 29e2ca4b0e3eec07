# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Language models: n-gram counts and a character LSTM
#
# A language model assigns a probability to a text by predicting one token at a time:
#
# $$P(x_1, \dots, x_L) = \prod_{i=1}^{L} P(x_i \mid x_1, \dots, x_{i-1}) .$$
#
# An **n-gram** model truncates the history to the previous $n - 1$ tokens and estimates each
# conditional probability by counting. A **recurrent** language model reads the whole history
# into a hidden state and is trained by gradient descent. Both are measured the same way, by
# the perplexity of text they have not seen, and both generate text the same way, by rolling a
# weighted die one character at a time. Here the tokens are characters.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import layerkit as lk
from layerkit.data import CharVocab, load_shakespeare, sequence_batches
from layerkit.models import NGram, char_lstm

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## Counting: a tiny example
#
# The corpus is the word `abracadabra` (vocabulary a, b, c, d, r). For a bigram model ($n = 2$)
# we count every pair (previous character, character). The text is read as if preceded by
# $n - 1$ copies of a start symbol `<s>`, so the first character is counted too, after `<s>`;
# `<s>` is never predicted itself. Rows: the context $u$, columns: the next character $v$.

# %%
corpus = "abracadabra"
chars = sorted(set(corpus))
V = len(chars)
start = "<s>"


def count_ngrams(text, n):
    """{context tuple: {next char: count}}, the text preceded by n - 1 start symbols."""
    padded = [start] * (n - 1) + list(text)
    table = {}
    for i in range(n - 1, len(padded)):
        u = tuple(padded[i - n + 1:i])
        table.setdefault(u, {}).setdefault(padded[i], 0)
        table[u][padded[i]] += 1
    return table


bigram_counts = count_ngrams(corpus, 2)
contexts = [(start,)] + [(c,) for c in chars]
print("u \\ v " + "".join(f"{v:>4}" for v in chars) + "   count(u)")
for u in contexts:
    row = bigram_counts.get(u, {})
    print(f"{u[0]:>5} " + "".join(f"{row.get(v, 0):4d}" for v in chars)
          + f"   {sum(row.values()):6d}")

# %% [markdown]
# The maximum-likelihood estimate $P(v \mid u) = \text{count}(u, v) / \text{count}(u)$ gives
# probability 0 to every pair not in the table (here "d" after "d"): one unseen pair in a
# held-out text makes its probability 0 and its perplexity infinite. **Add-k smoothing** adds
# $k$ to every count:
#
# $$P(v \mid u) = \frac{\text{count}(u, v) + k}{\text{count}(u) + k V},$$
#
# $k = 1$ being Laplace's rule. A context never seen ($\text{count}(u) = 0$) gets the uniform
# distribution $1/V$. The **perplexity** of a held-out text $x_1 \dots x_L$ is the exponential of
# the mean negative log-probability per token,
#
# $$\text{PPL} = \exp\Big(-\frac{1}{L} \sum_{i=1}^{L} \log P(x_i \mid x_{i-n+1}, \dots, x_{i-1})\Big),$$
#
# "the number of equally likely characters the model is choosing between": $V$ for the uniform
# model, 1 for a model that is always sure and right. Below, the perplexity of `cadabrad` under
# models of order 1 to 3 fitted to `abracadabra`, once with the dictionaries above and once
# with `layerkit.models.NGram`.

# %%
held_out = "cadabrad"


def hand_perplexity(train, test, n, k):
    table = count_ngrams(train, n)
    padded = [start] * (n - 1) + list(test)
    log_p = 0.0
    for i in range(n - 1, len(padded)):
        row = table.get(tuple(padded[i - n + 1:i]), {})
        log_p += np.log((row.get(padded[i], 0) + k) / (sum(row.values()) + k * V))
    return float(np.exp(-log_p / len(test)))


tiny_vocab = CharVocab.build(corpus)
tiny_checks = []
for n in (1, 2, 3):
    for k in (1.0, 0.1):
        by_hand = hand_perplexity(corpus, held_out, n, k)
        model = NGram(n, k=k, vocab_size=V).fit(tiny_vocab.encode(corpus))
        by_layerkit = model.perplexity(tiny_vocab.encode(held_out))
        tiny_checks.append((n, k, by_hand, by_layerkit))
        print(f"n = {n}, k = {k:3}: by hand {by_hand:.6f}   NGram {by_layerkit:.6f}")

# %% [markdown]
# A smaller $k$ trusts the counts more: the bigram and trigram get better on this held-out word,
# except where it contains a pair never seen ("d" after "d" at the end). With $n = 3$ several
# contexts of `cadabrad` were seen once, so the model is nearly certain and small $k$ pays off.

# %% [markdown]
# ## Sampling is rolling a weighted die
#
# To generate, take the distribution $P(\cdot \mid u)$ of the current context, draw one
# character from it, append it, move the context on and repeat. One draw: a uniform number
# $r \in [0, 1)$ lands in one of the intervals of the cumulative distribution, whose widths are
# the probabilities — a die whose faces have those weights. The bigram's die after "a":

# %%
bigram = NGram(2, k=0.1, vocab_size=V).fit(tiny_vocab.encode(corpus))
p_after_a = bigram.next_distribution(tiny_vocab.encode("a"))
cdf = np.cumsum(p_after_a)
fig, ax = plt.subplots(figsize=(9, 1.8))
left = 0.0
for ch, p in zip(chars, p_after_a):
    ax.barh(0, p, left=left, edgecolor="k", color=f"C{chars.index(ch)}", alpha=0.6)
    ax.text(left + p / 2, 0, f"{ch}\n{p:.2f}", ha="center", va="center")
    left += p
r = 0.55
ax.axvline(r, color="k", lw=2)
ax.text(r, 0.5, f" r = {r}", va="bottom")
ax.set(xlim=(0, 1), yticks=[], xlabel="cumulative probability",
       title='P(next | "a"): a uniform r picks the interval it falls in')
plt.show()
print(f"r = {r} falls in the interval of {chars[int(np.searchsorted(cdf, r, side='right'))]!r}")

# %% [markdown]
# `NGram.sample` does exactly this with `numpy.random.default_rng(seed)`: one uniform draw per
# character. Rolling the die by hand with the same generator gives the same text:

# %%
def roll_by_hand(model, length, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(length):
        p = model.next_distribution(np.array(out, dtype=np.int64) if out else None)
        c = np.cumsum(p)
        out.append(int(min(np.searchsorted(c, rng.random() * c[-1], side="right"), V - 1)))
    return np.array(out)


by_hand_ids = roll_by_hand(bigram, 30, seed=4)
sampled_ids = bigram.sample(30, seed=4)
print("by hand:     ", tiny_vocab.decode(by_hand_ids))
print("NGram.sample:", tiny_vocab.decode(sampled_ids))
print("seed 5:      ", tiny_vocab.decode(bigram.sample(30, seed=5)))

# %% [markdown]
# ## n-grams on Shakespeare
#
# `load_shakespeare()` splits 38 plays by play: 30 for training (3.9 M characters) and 4 for
# validation (Twelfth Night, Richard II, Macbeth, Pericles; 0.43 M), which we use as the
# held-out text. The vocabulary holds the 76 characters of all three splits, so that every
# held-out character has an id. Counting is cheap (a fraction of a second per model), so we fit
# $n = 1 \dots 6$ for two values of $k$, and also score the first 100k training characters
# (text the models have counted) to see over-fitting.

# %%
text = load_shakespeare()
vocab = CharVocab.build(text.train + text.valid + text.test)
train_ids, valid_ids = vocab.encode(text.train), vocab.encode(text.valid)
print(f"V = {len(vocab)}; {len(train_ids):,} training and {len(valid_ids):,} validation characters")
print(text.valid[:300])

# %%
ORDERS, KS = range(1, 7), (1.0, 0.03)
seen_ids = train_ids[:100_000]
ngram_ppl, ngram_train_ppl, ngrams = {}, {}, {}
t0 = time.perf_counter()
for n in ORDERS:
    counted = NGram(n, k=KS[0], vocab_size=len(vocab)).fit(train_ids)
    for k in KS:                        # same counts, another k: no need to count again
        m = counted if k == KS[0] else NGram(n, k=k, vocab_size=len(vocab)).from_arrays(
            counted.to_arrays())
        ngrams[n, k] = m
        ngram_ppl[n, k] = m.perplexity(valid_ids)
    ngram_train_ppl[n] = ngrams[n, 0.03].perplexity(seen_ids)
print(f"12 models counted and scored in {time.perf_counter() - t0:.1f} s\n")
print(" n   held-out, k=1   held-out, k=0.03   training text, k=0.03")
for n in ORDERS:
    print(f"{n:2d}   {ngram_ppl[n, 1.0]:13.2f}   {ngram_ppl[n, 0.03]:16.2f}   "
          f"{ngram_train_ppl[n]:21.2f}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(ORDERS, [ngram_ppl[n, 1.0] for n in ORDERS], "o-", label="held-out plays, k = 1")
ax.plot(ORDERS, [ngram_ppl[n, 0.03] for n in ORDERS], "o-", label="held-out plays, k = 0.03")
ax.plot(ORDERS, [ngram_train_ppl[n] for n in ORDERS], "s--", color="grey",
        label="training text, k = 0.03")
ax.axhline(len(vocab), color="k", ls=":", lw=1, label=f"uniform: V = {len(vocab)}")
ax.set(yscale="log", xlabel="order n (context = n - 1 characters)", ylabel="perplexity",
       title="character n-grams on Shakespeare")
ax.legend()
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown]
# Longer contexts help until the counts run out. With $n = 6$ most 5-character contexts of the
# held-out plays were seen rarely or never, and the held-out perplexity rises again while the
# perplexity of counted text keeps falling towards 1 — the n-gram is memorising. Large $k$
# hurts long contexts most: it spreads probability over all 76 characters after a context seen
# only a few times. The best setting, $n = 5$, $k = 0.03$, is the baseline of
# `layerkit train ngram` (5.25).
#
# Samples ($k = 0.03$, prompt `ROMEO:`, same seed). The 2-gram gets letter pairs right and
# little else. The 5-gram at temperature 1 shows the weakness of add-k smoothing without
# back-off: after a context seen once, the 75 unseen characters share $75k/(1 + 76k) \approx 69\,\%$
# of the probability, so the die soon lands on an odd character; the new context was never
# counted, its distribution is uniform, and the text never recovers. At temperature 0.6
# ($p^{1/0.6}$, renormalised) the rare characters are suppressed and the 5-gram stays on text it
# has counted.

# %%
romeo = vocab.encode("ROMEO:\n")
for n, tau in ((2, 1.0), (5, 1.0), (5, 0.6)):
    print(f"--- {n}-gram, temperature {tau} ---")
    print("ROMEO:\n" + vocab.decode(ngrams[n, 0.03].sample(160, prompt_ids=romeo,
                                                          temperature=tau, seed=0)) + "\n")

# %% [markdown]
# ## A character LSTM
#
# `char_lstm(V)` is Embedding → LSTM → Linear: at every step the LSTM's hidden state
# summarises the whole history, and the head gives logits $z_t$ with
# $P(x_{t+1} = v \mid x_{\le t}) = \operatorname{softmax}(z_t)_v$. Training minimises the
# cross-entropy of the next character, i.e. the log of the training perplexity.
#
# **Truncated BPTT.** `sequence_batches(ids, B, T)` cuts the text into $B$ contiguous streams
# and walks along them $T$ characters at a time; row $r$ of each window continues row $r$ of the
# previous one. The model is stateful: each window starts from the state the previous window
# ended with, but the gradient stops at the window's start.
#
# **The budget.** The full run, `layerkit train char-lstm` (hidden size 256, 64 streams of 100
# characters, 2 epochs over the 3.9 M training characters, several minutes), reaches a
# validation perplexity of about 5.0, below the 5-gram's 5.25. Here a much smaller model trains
# for 250 steps (hidden size 128, 32 streams × 64 characters: 512k characters, about an
# eighth of one epoch), which takes some fifteen seconds. We measure its perplexity on the
# first 64k characters of the held-out plays, in evaluation mode from a zero state.
#
# The matrices are small: numpy's BLAS runs on one thread, because with two threads a busy
# second core (other jobs on the machine) can make every step many times slower.

# %%
B, T, STEPS, HIDDEN, HELD_OUT = 32, 64, 250, 128, 64_000
lm_train = sequence_batches(train_ids[:B * T * STEPS + 1], B, T, drop_last=True)
lm_valid = sequence_batches(valid_ids[:HELD_OUT + 1], B, 200)
assert len(lm_train) == STEPS

lstm = char_lstm(len(vocab), embedding_dim=32, hidden_size=HIDDEN, seed=0)
loss, opt = lk.CrossEntropy(), lk.Adam(lstm, lr=5e-3)
with threadpool_limits(1, user_api="blas"):
    initial = lk.train.evaluate(lstm, loss, lm_valid, metrics=("perplexity",))["perplexity"]
    curve, held_out_curve = [], [(0, initial)]
    t0 = time.perf_counter()
    lstm.reset_state()
    for step, (x, y) in enumerate(lm_train, start=1):
        lstm.train()
        opt.zero_grad()
        curve.append(loss.forward(lstm.forward(x), y))      # carries the state to the next window
        lstm.backward(loss.backward())
        lk.clip_grad_norm(lstm, 5.0)
        opt.step()
        if step in (50, STEPS):                             # eval() keeps its own state
            held_out_curve.append(
                (step, lk.train.evaluate(lstm, loss, lm_valid, metrics=("perplexity",))["perplexity"]))
    train_seconds = time.perf_counter() - t0
lstm_ppl = held_out_curve[-1][1]
print(f"{STEPS} steps in {train_seconds:.1f} s (held-out evaluations included)")
for step, p in held_out_curve:
    print(f"step {step:3d}: held-out perplexity {p:6.2f}")

# %%
steps_axis = np.arange(1, STEPS + 1)
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.plot(steps_axis, np.exp(curve), color="C0", alpha=0.5, label="training window exp(loss)")
ax.plot(*zip(*held_out_curve), "o-", color="C3", label="LSTM, held-out plays")
for n, style in ((1, ":"), (3, "-."), (5, "--")):
    ax.axhline(ngram_ppl[n, 0.03 if n == 5 else 1.0], color="grey", ls=style, lw=1,
               label=f"{n}-gram, held-out")
ax.set(yscale="log", xlabel="training step", ylabel="perplexity",
       title=f"char LSTM (H = {HIDDEN}), {STEPS} steps of {B} x {T} characters")
ax.legend()
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown]
# The untrained network predicts nearly uniformly (perplexity ≈ V = 76). Within a few dozen
# steps it learns the character frequencies (the unigram level, 27) and then which characters
# follow which; after 250 steps it is near the 3-gram, far from the full run's ≈ 5.0 and
# still improving.
#
# ## Samples at several temperatures
#
# `lstm.sample` rolls the same weighted die as the n-gram, with
# $p = \operatorname{softmax}(z / \tau)$: a temperature $\tau < 1$ sharpens the distribution
# (safer, more repetitive text), $\tau > 1$ flattens it (more surprising, more misspelt).
#
# One practical point. The model was trained with a carried state: only the very first window
# started from a zero state, every later one from where the previous window ended. From a zero
# state and a short prompt such as `ROMEO:` this small model is in territory it has hardly seen
# and its first few dozen characters are junk (digits, `$`, `&`). So the prompt warms the state
# up on the opening lines of Macbeth (held-out text) before asking for Romeo's speech.

# %%
cut = text.valid.index("\n\n", 300) + 2
print(f"warm-up prompt: ...{text.valid[cut - 60:cut]!r} + 'ROMEO:\\n'\n")
prompt = vocab.encode(text.valid[:cut] + "ROMEO:\n")
samples = {}
for tau in (0.5, 1.0, 1.5):
    samples[tau] = lstm.sample(250, prompt_ids=prompt, temperature=tau, seed=1)
    print(f"--- temperature {tau} ---\nROMEO:\n{vocab.decode(samples[tau])}\n")

# %% [markdown]
# ## Held-out perplexity, side by side
#
# All on the same 64k held-out characters (the n-grams are scored again on this slice).

# %%
slice_ids = valid_ids[:HELD_OUT + 1]
final = [(f"{n}-gram, k = {k:g}", NGram(n, k=k, vocab_size=len(vocab)).from_arrays(
             ngrams[n, 1.0].to_arrays()).perplexity(slice_ids))
         for n, k in ((1, 1.0), (2, 1.0), (3, 1.0), (4, 0.1), (5, 0.03), (6, 0.03))]
final += [("char LSTM, untrained", initial),
          (f"char LSTM, H = {HIDDEN}, {STEPS} steps (this notebook)", lstm_ppl)]
print(f"{'model':45s} perplexity")
for name, p in final:
    print(f"{name:45s} {p:10.2f}")
print(f"\nfull run `layerkit train char-lstm`: about 5.0 on all validation plays "
      f"(5-gram: {ngram_ppl[5, 0.03]:.2f})")

# %% [markdown]
# ## Checks

# %%
# the add-k formula by hand gives NGram's perplexities on the tiny corpus
for n, k, by_hand, by_layerkit in tiny_checks:
    assert np.isclose(by_hand, by_layerkit, rtol=1e-12), (n, k, by_hand, by_layerkit)
# sampling is the weighted die: by hand = NGram.sample; the same seed, the same text
assert np.array_equal(by_hand_ids, sampled_ids)
assert np.array_equal(bigram.sample(30, seed=4), sampled_ids)
for tau in (0.5, 1.0, 1.5):
    assert np.array_equal(lstm.sample(250, prompt_ids=prompt, temperature=tau, seed=1), samples[tau])
assert not np.array_equal(lstm.sample(250, prompt_ids=prompt, seed=2), samples[1.0])
# n-gram perplexity on the held-out plays improves from n = 1 to n = 4 (both k)
for k in KS:
    assert all(ngram_ppl[n + 1, k] < ngram_ppl[n, k] for n in range(1, 4)), k
assert 5.0 < ngram_ppl[5, 0.03] < 5.5                       # the documented 5.25
# the small LSTM learned: from uniform (≈ V) to well below it, and below the unigram
assert abs(initial - len(vocab)) < 0.1 * len(vocab), initial
assert lstm_ppl < initial / 5
assert lstm_ppl < ngram_ppl[1, 1.0] / 2
assert all(b < a for (_, a), (_, b) in zip(held_out_curve, held_out_curve[1:]))
print(f"all checks passed; small LSTM held-out perplexity {lstm_ppl:.2f} "
      f"(untrained {initial:.1f}, unigram {ngram_ppl[1, 1.0]:.1f}, 3-gram {ngram_ppl[3, 1.0]:.2f})")
