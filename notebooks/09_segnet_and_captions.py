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
# # 09 · Captions and segmentation of multi-digit canvases
#
# One data set serves two of the lectures' systems. `digit_canvases` places 1–4 MNIST digits
# side by side on a 28 × 112 canvas and gives, for each canvas, a **caption** (`"seven two
# nine"`, word tokens between BOS and EOS) and a **label map** (0 on the background, 1 + d on
# the strokes of digit d). Training canvases use training digits only, test canvases test
# digits only.
#
# * **Image captioning** (`CaptionNet`): a small CNN encodes the canvas into a feature vector
#   f; f sets the initial state of an LSTM decoder and is also fed to it at every step. The
#   decoder is trained with teacher forcing (it reads the reference caption shifted right) and
#   decodes greedily or with **beam search**.
# * **SegNet** (`SegNet`): an encoder of Conv-BN-ReLU + max pooling that remembers its pooling
#   indices, a decoder that unpools with those indices, and a softmax over 11 classes at every
#   pixel (`CrossEntropy(axis=1)`).
#
# **Both models are trained here for a few seconds only** (CI executes this notebook on 2
# cores), so the numbers below are far from what the full recipes reach:
# `layerkit train caption` (≥ 90 % exact-match captions) and `layerkit train segnet` (mean IoU
# ≥ 0.75) train for minutes. The last cell asserts what these short runs must show.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import layerkit as lk
from layerkit.data import DigitCanvases, digit_canvases
from layerkit.models import CaptionNet, SegNet
from layerkit.train.recipe_caption import caption_scores
from layerkit.train.recipe_segnet import segmentation_scores

blas = threadpool_limits(1)          # small matrices: one BLAS thread is faster on 2 cores
t_start = time.perf_counter()

# %% [markdown]
# ## The canvases

# %%
train_set = digit_canvases(8, split="train", seed=0)
fig, axes = plt.subplots(4, 2, figsize=(10, 4.2))
for i, (a, b) in enumerate(axes):
    a.imshow(train_set.images[i, 0], cmap="gray")
    a.set_title(train_set.text(i), fontsize=9)
    b.imshow(train_set.labels[i], cmap="tab20", vmin=0, vmax=10, interpolation="nearest")
    b.set_title("label map (colour = 1 + digit)", fontsize=9)
    a.axis("off"), b.axis("off")
plt.tight_layout()
plt.show()
print("caption ids of canvas 0:", train_set.captions[0], "->", train_set.text(0))

# %% [markdown]
# ## Captioning: CNN encoder → LSTM decoder
#
# Teacher forcing: the input is `captions[:, :-1]` (BOS, w_1, …), the target `captions[:, 1:]`
# (w_1, …, EOS); PAD positions are ignored by the loss. A fresh batch of canvases every step.

# %%
def train_captioner(steps, batch_size=48, lr=3e-3, seed=0):
    model = CaptionNet(DigitCanvases.VOCAB_SIZE, seed=seed)
    loss, opt = lk.CrossEntropy(ignore_index=DigitCanvases.PAD), lk.Adam(model, lr=lr)
    losses = []
    for step in range(steps):
        batch = digit_canvases(batch_size, split="train", seed=1000 + step)
        model.train()
        opt.zero_grad()
        value = loss.forward(model.forward(batch.images, batch.captions[:, :-1]),
                             batch.captions[:, 1:])
        model.backward(loss.backward())
        lk.clip_grad_norm(model, 5.0)
        opt.step()
        losses.append(value)
    return model.eval(), losses


t0 = time.perf_counter()
captioner, caption_losses = train_captioner(200)
caption_seconds = time.perf_counter() - t0
test_set = digit_canvases(300, split="test", seed=0)
greedy = caption_scores(captioner, test_set)
beam = caption_scores(captioner, test_set, beam_size=3)
print(f"200 steps in {caption_seconds:.0f} s; loss {caption_losses[0]:.2f} -> "
      f"{np.mean(caption_losses[-10:]):.2f}")
for name, s in (("greedy", greedy), ("beam 3", beam)):
    by_len = "  ".join(f"{k[-1]} digits {v:.0%}" for k, v in s.items() if k.startswith("acc"))
    print(f"{name}: exact match {s['exact_match']:.1%}, BLEU-4 {s['bleu4']:.3f}; {by_len}")

# %% [markdown]
# Corpus BLEU-4 stays 0 until some 4-digit caption comes out right: a caption of at most four
# words has a 4-gram only when it has four digits, and that 4-gram is the whole caption. It
# reaches 0.94 in the full recipe.
#
# Sample captions of held-out canvases, greedy and with a beam of 3 (✓: exact match).

# %%
ids_greedy = captioner.greedy_decode(test_set.images[:6], 5, test_set.BOS, test_set.EOS)
ids_beam = captioner.beam_decode(test_set.images[:6], 5, test_set.BOS, test_set.EOS,
                                 beam_size=3)
fig, axes = plt.subplots(3, 2, figsize=(10, 3.6))
for i, ax in enumerate(axes.ravel()):
    ax.imshow(test_set.images[i, 0], cmap="gray")
    ref, g, b = (test_set.text(i), DigitCanvases.decode(ids_greedy[i]),
                 DigitCanvases.decode(ids_beam[i]))
    ax.set_title(f"greedy: {g} {'✓' if g == ref else '✗'}\nbeam: {b} "
                 f"{'✓' if b == ref else '✗'}", fontsize=8)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# Beam search keeps the 3 best partial captions at each step, scored by the sum of the
# log-probabilities. It looks further than greedy decoding, which commits to the likeliest
# word at each step, so its captions usually score higher under the model (not always: the
# greedy caption can fall out of the beam on the way).

# %%
_, s_greedy = captioner.beam_decode(test_set.images, 5, 1, 2, beam_size=1, return_scores=True)
_, s_beam = captioner.beam_decode(test_set.images, 5, 1, 2, beam_size=3, return_scores=True)
print(f"mean log-probability: greedy {s_greedy.mean():.3f}, beam 3 {s_beam.mean():.3f}; "
      f"beam higher on {np.mean(s_beam > s_greedy + 1e-9):.0%} of the canvases")

# %% [markdown]
# ## SegNet: pooling indices carry the positions back up
#
# Per-pixel cross-entropy over the 11 classes (`CrossEntropy(axis=1)`: the class axis of the
# (N, 11, H, W) logits), plus the same mean over the stroke pixels only (`ignore_index=0`
# leaves the background out): the strokes are only 8 % of the pixels, and without that second
# term the signal that tells the digits apart is too weak to get going. Mean IoU averages over the classes the intersection over union of the
# predicted and the true pixels of each class.

# %%
def train_segnet(steps, batch_size=16, lr=3e-3, decoder="unpool", seed=0):
    model = SegNet(decoder=decoder, seed=seed)
    loss, strokes = lk.CrossEntropy(axis=1), lk.CrossEntropy(axis=1, ignore_index=0)
    opt = lk.Adam(model, lr=lr)
    losses = []
    for step in range(steps):
        batch = digit_canvases(batch_size, split="train", seed=2000 + step)
        model.train()
        opt.zero_grad()
        logits = model.forward(batch.images)
        losses.append(loss.forward(logits, batch.labels) + strokes.forward(logits, batch.labels))
        model.backward(loss.backward() + strokes.backward())
        opt.step()
    return model.eval(), losses


t0 = time.perf_counter()
segnet, seg_losses = train_segnet(60)
seg_seconds = time.perf_counter() - t0
seg_test = digit_canvases(100, split="test", seed=0)
seg = segmentation_scores(segnet, seg_test)
print(f"60 steps in {seg_seconds:.0f} s; loss {seg_losses[0]:.2f} -> "
      f"{np.mean(seg_losses[-5:]):.2f}; pixel accuracy {seg['pixel_accuracy']:.1%}, "
      f"background IoU {seg['iou_0']:.2f}, mean IoU {seg['mean_iou']:.2f}")

# %%
pred = segnet.predict(seg_test.images[:4])
fig, axes = plt.subplots(4, 3, figsize=(12, 4.4))
for i in range(4):
    for ax, img, title in zip(axes[i], (seg_test.images[i, 0], seg_test.labels[i], pred[i]),
                              ("input", "label", "prediction")):
        kw = {"cmap": "gray"} if title == "input" else {"cmap": "tab20", "vmin": 0, "vmax": 10,
                                                         "interpolation": "nearest"}
        ax.imshow(img, **kw)
        ax.set_title(title if i == 0 else "", fontsize=9)
        ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# After a few seconds the network has found the strokes (background IoU near 1) but not yet
# which digit each stroke belongs to; telling the digits apart at every pixel is what the
# minutes of `layerkit train segnet` buy.

# %%
total = time.perf_counter() - t_start
print(f"notebook ran in {total:.0f} s")
assert caption_losses[-1] < 0.5 * caption_losses[0]          # the captioner learns
assert greedy["accuracy_1"] > 0.5 and greedy["exact_match"] > 0.2   # chance, 1 digit: 10 %
assert 0 <= greedy["bleu4"] <= 1 and s_beam.mean() > s_greedy.mean()
assert np.mean(seg_losses[-5:]) < 0.7 * seg_losses[0]        # SegNet learns
assert seg["iou_0"] > 0.85                                    # it finds the strokes
