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
# # 08 · Encoder–decoder networks for images
#
# An encoder–decoder network maps an image to an image of the same size. The **encoder**
# (convolutions and pooling) shrinks the spatial resolution while it builds features; the
# **decoder** has to grow the resolution back. There are two classic ways to upsample:
#
# * **max-unpooling with the pooling indices** (SegNet, Badrinarayanan et al. 2015): each max
#   pooling in the encoder remembers *where* in its window the maximum was, and the matching
#   unpooling in the decoder puts the value back at exactly that position, zeros elsewhere.
#   It has no weights; a convolution after it fills in the zeros;
# * **transposed convolution** ("deconvolution"): a learned upsampling, every input pixel
#   stamping a scaled copy of a kernel into the larger output (`ConvTranspose2D`).
#
# Here both decoders are trained to **denoise** handwritten digits, on scikit-learn's 8×8
# digits (`layerkit.data.load_digits`), and their outputs are compared. The unpooling variant
# cannot be a `Sequential`: the decoder needs the indices produced in the encoder, so the model
# is a small class of its own, following the Layer contract and checked by finite differences.
# Every claim is asserted in the last cell.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import layerkit as lk
from layerkit.data import batches, load_digits

np.set_printoptions(precision=2, suppress=True)

# %% [markdown]
# ## Max-unpooling on a 4×4 example
#
# `MaxPool2D(2, return_indices=True)` returns the pooled map and, for every output, the flat
# position (row · W + column) of its maximum in the input plane. `MaxUnpool2D(2)` given those
# indices writes each value back there. The result keeps the maxima in place and zeros the
# rest: not the input, but a sparse map that remembers where the strong responses were.

# %%
fmap = np.array([[1, 3, 2, 0],
                 [4, 2, 1, 5],
                 [0, 1, 7, 2],
                 [6, 2, 3, 1]], dtype=np.float64)[None, None]
pooled, indices = lk.MaxPool2D(2, return_indices=True).forward(fmap)
unpooled = lk.MaxUnpool2D(2).forward(pooled, indices)
print("input:\n", fmap[0, 0])
print("max-pooled:\n", pooled[0, 0])
print("indices (flat positions in the 4×4 plane):\n", indices[0, 0])
print("unpooled:\n", unpooled[0, 0])

# %% [markdown]
# ## The model
#
# Encoder (the same in both variants), for 1×8×8 inputs:
#
# | stage | layers | output |
# | --- | --- | --- |
# | enc1 | Conv2D(1, 16, 3, padding=1), ReLU, MaxPool2D(2) | 16×4×4 (+ indices) |
# | enc2 | Conv2D(16, 32, 3, padding=1), ReLU, MaxPool2D(2) | 32×2×2 (+ indices) |
#
# Decoder, two variants:
#
# | stage | `"unpool"` (SegNet) | `"transpose"` |
# | --- | --- | --- |
# | dec2 | MaxUnpool2D(2) with enc2's indices, Conv2D(32, 16, 3, padding=1), ReLU | ConvTranspose2D(32, 16, 4, stride=2, padding=1), ReLU |
# | dec1 | MaxUnpool2D(2) with enc1's indices, Conv2D(16, 1, 3, padding=1) | ConvTranspose2D(16, 1, 4, stride=2, padding=1) |
#
# A transposed convolution with kernel 4, stride 2 and padding 1 doubles the size exactly:
# $(W - 1)\cdot 2 - 2 + 4 = 2W$. The output is a linear layer (no activation), trained with
# the mean squared error against the clean image.
#
# `backward` runs the same layers in reverse order. Each child adds its own parameter
# gradients, and `params` / `grads` hold references to the children's arrays under dotted
# names, so `Adam`, `fit` and `gradcheck` see the model as one layer.

# %%
class DenoisingAE(lk.Layer):
    """Convolutional auto-encoder for (N, 1, 8, 8) images; upsample = "unpool" or "transpose"."""

    def __init__(self, upsample="unpool", channels=(16, 32), dtype=np.float32, seed=0):
        super().__init__()
        c1, c2 = channels
        self.upsample = upsample
        self.enc1 = lk.Conv2D(1, c1, 3, padding=1, dtype=dtype, seed=seed)
        self.enc2 = lk.Conv2D(c1, c2, 3, padding=1, dtype=dtype, seed=seed + 1)
        self.pool1 = lk.MaxPool2D(2, return_indices=True)
        self.pool2 = lk.MaxPool2D(2, return_indices=True)
        self.relu1, self.relu2, self.relu3 = lk.ReLU(), lk.ReLU(), lk.ReLU()
        if upsample == "unpool":
            self.unpool2, self.unpool1 = lk.MaxUnpool2D(2), lk.MaxUnpool2D(2)
            self.dec2 = lk.Conv2D(c2, c1, 3, padding=1, dtype=dtype, seed=seed + 2)
            self.dec1 = lk.Conv2D(c1, 1, 3, padding=1, dtype=dtype, seed=seed + 3)
        elif upsample == "transpose":
            self.dec2 = lk.ConvTranspose2D(c2, c1, 4, stride=2, padding=1, dtype=dtype,
                                           seed=seed + 2)
            self.dec1 = lk.ConvTranspose2D(c1, 1, 4, stride=2, padding=1, dtype=dtype,
                                           seed=seed + 3)
        else:
            raise ValueError(f"upsample must be 'unpool' or 'transpose', got {upsample!r}")
        for name in ("enc1", "enc2", "dec2", "dec1"):
            child = getattr(self, name)
            for k in child.params:                      # references, not copies
                self.params[f"{name}.{k}"] = child.params[k]
                self.grads[f"{name}.{k}"] = child.grads[k]

    def extra_repr(self):
        return repr(self.upsample)

    def encode(self, x):
        h, idx1 = self.pool1.forward(self.relu1.forward(self.enc1.forward(x)))
        code, idx2 = self.pool2.forward(self.relu2.forward(self.enc2.forward(h)))
        return code, (idx1, idx2)

    def decode(self, code, indices):
        idx1, idx2 = indices
        if self.upsample == "unpool":
            h = self.unpool2.forward(code, idx2)
            h = self.relu3.forward(self.dec2.forward(h))
            return self.dec1.forward(self.unpool1.forward(h, idx1))
        return self.dec1.forward(self.relu3.forward(self.dec2.forward(code)))

    def forward(self, x):
        return self.decode(*self.encode(x))

    def backward(self, dy):
        d = self.dec1.backward(dy)
        if self.upsample == "unpool":
            d = self.unpool1.backward(d)
            d = self.unpool2.backward(self.dec2.backward(self.relu3.backward(d)))
        else:
            d = self.dec2.backward(self.relu3.backward(d))
        d = self.enc2.backward(self.relu2.backward(self.pool2.backward(d)))
        return self.enc1.backward(self.relu1.backward(self.pool1.backward(d)))


for variant in ("unpool", "transpose"):
    ae = DenoisingAE(variant)
    print(f"{variant:9s}  parameters: {ae.num_params():5d}   "
          f"output shape: {ae.forward(np.zeros((1, 1, 8, 8), np.float32)).shape}")

# %% [markdown]
# ## Gradient check
#
# Before training, `lk.gradcheck` compares `backward` with finite differences of `forward`
# in float64, on two random 8×8 images and a narrow copy of each model (2 and 3 channels, so
# the check is quick): the input gradient and every parameter gradient, for both variants.
# The max pooling is differentiable almost everywhere; the random input keeps every window's
# maximum well clear of a tie.

# %%
x_check = np.random.default_rng(1).random((2, 1, 8, 8))
reports = {}
for variant in ("unpool", "transpose"):
    reports[variant] = lk.gradcheck(DenoisingAE(variant, channels=(2, 3), dtype=np.float64),
                                    x_check)
    print(reports[variant])

# %% [markdown]
# ## Data and noise
#
# The 1,797 8×8 digits, pixels in [0, 1], split 1,437 / 360. The noise is additive Gaussian
# with σ = 0.4, a fresh draw for every training epoch (so the network cannot memorise it) and
# one fixed draw for the held-out images. The mean squared error between the noisy and the
# clean held-out images, about σ² = 0.16, is the error to beat.

# %%
x_train, _, x_test, _ = load_digits()
SIGMA = 0.4


def noisy(x, seed):
    return (x + SIGMA * np.random.default_rng(seed).standard_normal(x.shape)).astype(np.float32)


x_test_noisy = noisy(x_test, 0)
noisy_mse = float(np.mean((x_test_noisy - x_test) ** 2))
print(f"held out: {x_test.shape}, MSE(noisy, clean) = {noisy_mse:.4f}")

# %% [markdown]
# ## Training both variants
#
# Adam, learning rate 3·10⁻³, mini-batches of 64, 20 epochs, the clean image as the target. The
# training data are a callable: epoch *e* draws new noise (seed 100 + *e*) and shuffles with
# seed *e*. One BLAS thread, as in the other notebooks: the products are tiny, and a second
# thread waiting for a core that another process holds only slows them down.

# %%
EPOCHS = 20


def training_batches(epoch):
    return batches(noisy(x_train, 100 + epoch), x_train, 64, seed=epoch)


models, histories, seconds = {}, {}, {}
for variant in ("unpool", "transpose"):
    models[variant] = DenoisingAE(variant, seed=0)
    start = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):
        histories[variant] = lk.train.fit(
            models[variant], lk.MSE(), lk.Adam(models[variant], lr=3e-3), training_batches,
            epochs=EPOCHS, batch_size=360, val_data=(x_test_noisy, x_test), metrics=(),
            progress=False)
    seconds[variant] = time.perf_counter() - start
    print(f"{variant:9s}  {seconds[variant]:.1f} s   held-out MSE at epochs 1, 5, ..., 17:",
          " ".join(f"{v:.4f}" for v in histories[variant].column("val_loss")[::4]))

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.6))
for variant, h in histories.items():
    ax.plot(range(1, EPOCHS + 1), h.column("val_loss"), "o-", ms=3, label=f"{variant}: held out")
    ax.plot(range(1, EPOCHS + 1), h.column("train_loss"), ":", label=f"{variant}: training")
ax.axhline(noisy_mse, color="gray", ls="--", label="noisy input")
ax.set_yscale("log"), ax.set_xlabel("epoch"), ax.set_ylabel("MSE against the clean image")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Reconstructions
#
# Rows: the clean held-out digit, the noisy input the network receives, and the two decoders'
# outputs. (The first row is never shown to the network.)

# %%
recon = {v: m.forward(x_test_noisy) for v, m in models.items()}
errors = {v: float(np.mean((r - x_test) ** 2)) for v, r in recon.items()}

rows = [("clean", x_test), ("noisy input", x_test_noisy),
        ("unpool decoder", recon["unpool"]), ("transpose decoder", recon["transpose"])]
show = np.arange(12) * 30
fig, axes = plt.subplots(len(rows), len(show), figsize=(12, 4.6))
for r, (label, images) in enumerate(rows):
    for c, i in enumerate(show):
        axes[r, c].imshow(images[i, 0], cmap="gray_r", vmin=0, vmax=1)
        axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
plt.show()

print(f"MSE against the clean held-out digits:  noisy input {noisy_mse:.4f}")
for v in recon:
    print(f"  {v:9s} decoder {errors[v]:.4f}   ({errors[v] / noisy_mse:.2f} × the noise)")

# %% [markdown]
# Both decoders remove most of the noise: the background comes back flat and the strokes in
# the right places, at about a quarter of the noisy input's error. What they lose is
# sharpness. With σ = 0.4 on pixels in [0, 1] a single pixel cannot be told apart from noise,
# and where the network is unsure the squared error is smallest for a grey, in-between value,
# so the strokes come out blurred. The two upsampling schemes end up close: on this small task
# the learned transposed convolution is slightly better and about twice as fast here (no
# separate unpooling step and one layer fewer at full resolution).
#
# ## What the indices carry
#
# The unpooling decoder gets, for free, the *positions* of the encoder's maxima. To see how
# much they matter, decode the same codes with the indices of a **different** image: the
# values are the same, only the places they are written to change.

# %%
ae = models["unpool"]
code, idx = ae.encode(x_test_noisy)
rolled = tuple(np.roll(i, 1, axis=0) for i in idx)         # image k gets image k-1's indices
wrong_places = ae.decode(code, rolled)
wrong_places_mse = float(np.mean((wrong_places - x_test) ** 2))
print(f"unpool decoder, own indices: {errors['unpool']:.4f}   "
      f"another image's indices: {wrong_places_mse:.4f}")

fig, axes = plt.subplots(2, 8, figsize=(9, 2.6))
for c, i in enumerate(show[:8]):
    axes[0, c].imshow(recon["unpool"][i, 0], cmap="gray_r", vmin=0, vmax=1)
    axes[1, c].imshow(wrong_places[i, 0], cmap="gray_r", vmin=0, vmax=1)
for ax in axes.ravel():
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("own", rotation=0, ha="right")
axes[1, 0].set_ylabel("swapped", rotation=0, ha="right")
plt.show()

# %% [markdown]
# With swapped indices the decoder writes the right features to the wrong places and the error
# more than doubles: a large part of the spatial detail of the unpooling decoder's output comes
# from the encoder's indices, not from the 32×2×2 code.

# %% [markdown]
# ## Checks

# %%
# max-unpooling puts each maximum back where it came from and zeros the rest
assert np.array_equal(unpooled[0, 0], [[0, 0, 0, 0], [4, 0, 0, 5], [0, 0, 7, 0], [6, 0, 0, 0]])
assert np.array_equal(indices[0, 0], [[4, 7], [12, 10]])
# the hand-written model's backward matches finite differences in float64, both variants
for variant, report in reports.items():
    assert report.passed and report.max_rel_error < 1e-7, (variant, report.max_rel_error)
    assert {t.name for t in report.tensors} >= {"x", "enc1.weight", "dec1.weight"}
# both decoders reconstruct 8x8 images and halve the noisy input's error on held-out digits
assert all(r.shape == x_test.shape for r in recon.values())
assert 0.15 < noisy_mse < 0.17
for variant in recon:
    assert errors[variant] < 0.5 * noisy_mse, (variant, errors[variant], noisy_mse)
    assert np.isclose(histories[variant].column("val_loss")[-1], errors[variant], rtol=1e-4)
# the indices carry information: decoding with another image's indices is much worse
assert wrong_places_mse > 1.5 * errors["unpool"], (wrong_places_mse, errors["unpool"])
print("all checks passed")
