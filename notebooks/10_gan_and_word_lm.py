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
# # 10 · A DCGAN draws digits, a word-level LSTM writes Shakespeare
#
# Two generative models, each trained here in a **short run** (seconds, so that the notebook
# runs in CI); the `layerkit train dcgan` and `layerkit train word-lstm` recipes train the same
# models for minutes and state their targets.
#
# - A **DCGAN** (Radford et al. 2016): a generator $G$ of transposed convolutions turns noise
#   $z \sim \mathcal N(0, I)$ into a 28×28 image; a discriminator $D$ of strided convolutions
#   says "real" or "generated". $D$ is trained to tell them apart, $G$ to fool $D$.
# - A **word-level language model**: the character LSTM's architecture over word ids, next to a
#   word bigram with add-k smoothing.

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from layerkit import data as D
from layerkit.checkpoint import load
from layerkit.models import DCGAN, NGram
from layerkit.train.recipe_dcgan import dcgan, judge_digits
from layerkit.train.recipe_word_lstm import WORD_NGRAM, shakespeare_words, word_lstm
from layerkit.train.recipes import lenet

work = tempfile.mkdtemp()

# %% [markdown]
# ## The two networks
#
# $G$: $z$ (64) → ConvT 7×7 → 7×7×64 → BN, ReLU → ConvT stride 2 → 14×14×32 → BN, ReLU →
# ConvT stride 2 → 28×28×1 → tanh. $D$ mirrors it with strided convolutions and LeakyReLU(0.2)
# down to one logit. Each transposed convolution scatters a copy of its kernel per input pixel,
# which is why it doubles the image side at stride 2.

# %%
gan = DCGAN()
z = gan.noise(2, seed=0)
x = z
for layer in gan.generator:
    x = layer.forward(x)
    print(f"G {type(layer).__name__:16s} -> {x.shape}")
for layer in gan.discriminator:
    x = layer.forward(x)
    print(f"D {type(layer).__name__:16s} -> {x.shape}")
print("parameters: G", sum(p.size for p in gan.generator.params.values()),
      " D", sum(p.size for p in gan.discriminator.params.values()))

# %% [markdown]
# ## Quality, measured: a LeNet-5 judges the generated digits
#
# A generated image counts as a recognisable digit when a LeNet-5 trained on real digits gives
# it one class with probability ≥ 0.9, and the generator covers the digits when every class gets
# a fair share of its samples (no *mode collapse*). Here a quick LeNet-5 (2 epochs on 2,000
# digits) judges; the recipe uses the full `layerkit train lenet`.

# %%
judge_path = os.path.join(work, "judge.npz")
lenet(epochs=2, limit=2000, out=judge_path, progress=False)
judge = load(judge_path)
real = D.load_mnist5k().x_test[:1000]
print("real test digits:      ", judge_digits(judge, real))
untrained = judge_digits(judge, DCGAN().generate(1000, seed=1))
print("untrained generator:   ", untrained)

# %% [markdown]
# ## A short training run
#
# Each step: $D$ gets a batch of real digits (target 1) and a batch of $G(z)$ (target 0),
# binary cross-entropy from logits; then $G$ is trained so that $D$ calls its batch real (the
# non-saturating loss $-\log D(G(z))$), its gradient reaching $G$ through $D$'s input gradient.
# Adam with lr $2\cdot10^{-4}$ and $\beta_1 = 0.5$ for both, as in the DCGAN paper. 300 steps
# of 32 here; the recipe runs 3,000 steps of 64.

# %%
gan_path = os.path.join(work, "gan.npz")
result = dcgan(steps=300, batch_size=32, eval_every=100, classifier=judge_path, out=gan_path,
               progress=False)
for h in result.history:
    print(f"step {h['step']:4d}  D loss {h['d_loss']:.3f}  G loss {h['g_loss']:.3f}  "
          f"confident {h['confident_fraction']:.1%}  smallest class "
          f"{h['smallest_class_fraction']:.1%}")

# %%
gan = load(gan_path)
samples = gan.generate(64, seed=7)
fig, axes = plt.subplots(4, 16, figsize=(12, 3.2))
for ax, img in zip(axes.flat, samples):
    ax.imshow(img[0], cmap="gray_r", vmin=0, vmax=1)
    ax.axis("off")
fig.suptitle(f"DCGAN samples after {result.history[-1]['step']} steps (short run)")
plt.show()

# %% [markdown]
# ## A word-level language model
#
# Words are `WordVocab` tokens of the training plays (lower-cased words and punctuation); the
# 1,999 most frequent are kept, everything else is `<unk>`. A short run: the first 40,000
# training words, a small LSTM, one epoch. The bigram with add-k smoothing is fitted on the same
# words; the recipe trains on all 0.88 M words.

# %%
lm_path = os.path.join(work, "word_lstm.npz")
lm_result = word_lstm(max_words=40000, epochs=1, batch_size=16, seq_len=20, hidden_size=64,
                      embedding_dim=32, lr=0.01, out=lm_path, progress=False)
print(lm_result.summary())

vocab, train_ids, valid_ids = shakespeare_words(max_words=40000)
for n in (1, 2, 3):
    ppl = NGram(n, k=WORD_NGRAM["k"], vocab_size=len(vocab)).fit(train_ids).perplexity(valid_ids)
    print(f"word {n}-gram, k={WORD_NGRAM['k']}: validation perplexity {ppl:7.1f}")

# %%
lm = load(lm_path)
prompt = vocab.encode("what is")
for temperature in (0.5, 1.0):
    lm.reset_state()
    ids = lm.sample(30, prompt_ids=prompt, temperature=temperature, seed=3)
    print(f"T={temperature}: what is {vocab.decode(ids)}\n")

# %% [markdown]
# ## Checks
#
# The short runs must already do better than chance: the trained generator gets more
# confident verdicts than the untrained one, the language model beats the uniform distribution
# over the vocabulary, and the checkpoints reproduce what the runs measured.

# %%
assert result.history[-1]["confident_fraction"] > untrained["confident_fraction"]
assert judge_digits(judge, gan.generate(1000, seed=gan.meta["sample_seed"])) == {
    k: result.history[-1][k] for k in ("confident_fraction", "smallest_class_fraction",
                                       "class_fractions")}
assert lm_result.metrics["valid_perplexity"] < len(vocab)
assert samples.shape == (64, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
print("all checks passed")
