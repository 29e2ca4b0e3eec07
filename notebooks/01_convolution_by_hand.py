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
# # 01 · Convolution by hand
#
# A convolutional layer slides one small filter over the whole image and, at every position,
# takes a weighted sum of the pixels under it. This notebook works through the lecture's
# examples with numbers small enough to check by hand, computes the same numbers with
# layerkit's `Conv2D`, `MaxPool2D` and `AvgPool2D`, and then applies a few classic filters to a
# real photograph.
#
# Every claim made here is asserted in the last cell, so the notebook fails its test if any of
# it stops being true.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import layerkit as lk

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## Cross-correlation and convolution
#
# For an image $I$ and a kernel $K$ of size $k_h \times k_w$, **cross-correlation** places the
# kernel on the image and multiplies matching entries:
#
# $$(I \star K)(i, j) = \sum_{m=0}^{k_h-1} \sum_{n=0}^{k_w-1} I(i+m,\, j+n)\, K(m, n).$$
#
# The mathematical **convolution** runs through the kernel backwards,
#
# $$(I * K)(i, j) = \sum_{m} \sum_{n} I(i-m,\, j-n)\, K(m, n),$$
#
# which is the same as cross-correlating with the kernel rotated by 180°:
# $I * K = I \star \operatorname{rot180}(K)$. Deep-learning libraries (layerkit included)
# implement cross-correlation and still call it "convolution": the kernel is learned, so
# whether it is stored flipped makes no difference to what the network can represent.
#
# The difference is easiest to see on a single bright pixel (an impulse). Convolution copies
# the kernel onto it — the kernel *is* the impulse response — while cross-correlation stamps
# the kernel upside down.

# %%
def correlate2d(image, kernel):
    """Plain-loop 'valid' cross-correlation: the first formula above, no padding, stride 1."""
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
    return out


def conv_layer(kernel, **kw):
    """A one-filter Conv2D (no bias, float64) whose weight is set by hand."""
    layer = lk.Conv2D(1, 1, kernel.shape, bias=False, dtype=np.float64, **kw)
    layer.params["weight"][0, 0] = kernel
    return layer


def run(layer, image):
    """Apply a layer to one (H, W) image and return the (H', W') result."""
    return layer.forward(image[None, None].astype(np.float64))[0, 0]


asym = np.arange(1.0, 10.0).reshape(3, 3)       # 1..9: not symmetric, so flipping shows
impulse = np.zeros((7, 7))
impulse[3, 3] = 1.0

corr = run(conv_layer(asym, padding=1), impulse)               # what Conv2D computes
conv = run(conv_layer(asym[::-1, ::-1], padding=1), impulse)   # true convolution
print("kernel:\n", asym)
print("cross-correlation with an impulse (centre 3x3):\n", corr[2:5, 2:5])
print("convolution with an impulse (centre 3x3):\n", conv[2:5, 2:5])

# %% [markdown]
# ## A worked example: a binary 5×5 image ⋆ a 3×3 kernel
#
# No padding, stride 1: the 3×3 window fits in $5 - 3 + 1 = 3$ positions along each axis.
# The top-left output, worked by hand, is the sum of the image entries where the kernel has
# a 1 (its corners and centre):
#
# $$y_{00} = I_{00} + I_{02} + I_{11} + I_{20} + I_{22} = 1 + 1 + 1 + 0 + 1 = 4 .$$

# %%
image5 = np.array([[1, 1, 1, 0, 0],
                   [0, 1, 1, 1, 0],
                   [0, 0, 1, 1, 1],
                   [0, 0, 1, 1, 0],
                   [0, 1, 1, 0, 0]], dtype=np.float64)
kernel3 = np.array([[1, 0, 1],
                    [0, 1, 0],
                    [1, 0, 1]], dtype=np.float64)
by_hand = np.array([[4, 3, 4],
                    [2, 4, 3],
                    [2, 3, 4]], dtype=np.float64)   # worked out on paper, window by window

y_lk = run(conv_layer(kernel3), image5)
print("layerkit Conv2D:\n", y_lk)
print("plain loops:\n", correlate2d(image5, kernel3))
print("agrees with the hand-worked numbers:", np.array_equal(y_lk, by_hand))

# %% [markdown]
# ### Stride 2: downsampling
#
# With stride $S = 2$ the window jumps two pixels at a time, so only every other position of
# the stride-1 result is computed: $\lfloor (5 - 3)/2 \rfloor + 1 = 2$ outputs per axis, the
# corners of the table above.

# %%
y_s2 = run(conv_layer(kernel3, stride=2), image5)
print("stride 2:\n", y_s2)
print("equals by_hand[::2, ::2]:", np.array_equal(y_s2, by_hand[::2, ::2]))

# %% [markdown]
# ### Pooling
#
# Pooling has no weights: a 2×2 window with stride 2 replaces each block by its **maximum**
# (max pooling) or its **mean** (average pooling). On this 4×4 feature map the blocks are
#
# | block | entries | max | mean |
# | --- | --- | --- | --- |
# | top left | 1, 1, 5, 6 | 6 | 3.25 |
# | top right | 2, 4, 7, 8 | 8 | 5.25 |
# | bottom left | 3, 2, 1, 2 | 3 | 2 |
# | bottom right | 1, 0, 3, 4 | 4 | 2 |

# %%
fmap = np.array([[1, 1, 2, 4],
                 [5, 6, 7, 8],
                 [3, 2, 1, 0],
                 [1, 2, 3, 4]], dtype=np.float64)
max_by_hand = np.array([[6, 8], [3, 4]], dtype=np.float64)
avg_by_hand = np.array([[3.25, 5.25], [2, 2]], dtype=np.float64)

max_lk = run(lk.MaxPool2D(2), fmap)
avg_lk = run(lk.AvgPool2D(2), fmap)
print("MaxPool2D(2):\n", max_lk)
print("AvgPool2D(2):\n", avg_lk)

# %% [markdown]
# ## Classic filters on a photograph
#
# scikit-learn ships two sample photographs inside its wheel, so nothing is downloaded. We
# turn one into a grayscale image with the usual luma weights and shrink it 4× by averaging
# 4×4 blocks (itself an average pooling!) to keep the notebook fast.
#
# Four hand-made 5×5 filters go into **one** `Conv2D(1, 4, kernel_size=5, padding=2)`, one
# filter per output channel; padding 2 keeps the output the size of the input
# ($\lfloor (W - 5 + 4)/1 \rfloor + 1 = W$):
#
# - **box blur**: every weight $1/25$, the local mean;
# - **sharpen**: $2\delta - \text{blur}_{3\times3}$, i.e. the image plus (image − local mean);
# - **edge detect**: the Laplacian $\begin{pmatrix}0&1&0\\1&-4&1\\0&1&0\end{pmatrix}$, whose
#   weights sum to 0, so flat regions map to 0;
# - **shift**: a single 1 two pixels right of the centre. Cross-correlation reads
#   $y(i, j) = x(i, j + 2)$, so the picture moves two pixels to the *left*.

# %%
from sklearn.datasets import load_sample_image

rgb = load_sample_image("china.jpg")                      # (427, 640, 3) uint8
gray = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
h, w = (s // 4 * 4 for s in gray.shape)
small = gray[:h, :w].reshape(h // 4, 4, w // 4, 4).mean(axis=(1, 3))
print("photo", rgb.shape, "-> grayscale, 4x smaller:", small.shape)


def embed(k, size=5):
    """Put a small odd-sized kernel in the centre of a size x size one."""
    out = np.zeros((size, size))
    o = (size - k.shape[0]) // 2
    out[o:o + k.shape[0], o:o + k.shape[1]] = k
    return out


filters = {
    "box blur": np.full((5, 5), 1 / 25),
    "sharpen": embed(2 * embed(np.ones((1, 1)), 3) - np.full((3, 3), 1 / 9)),
    "edge detect": embed(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)),
    "shift": np.zeros((5, 5)),
}
filters["shift"][2, 4] = 1.0

bank = lk.Conv2D(1, len(filters), 5, padding=2, bias=False, dtype=np.float64)
bank.params["weight"][:, 0] = np.stack(list(filters.values()))
out = bank.forward(small[None, None])[0]                 # (4, H, W)
print(bank, "->", out.shape)

# %%
fig, axes = plt.subplots(2, 5, figsize=(13, 4.6),
                         gridspec_kw=dict(height_ratios=[1, 3]))
axes[0, 0].axis("off")
axes[1, 0].imshow(small, cmap="gray", vmin=0, vmax=1)
axes[1, 0].set_title("input")
for c, (name, k) in enumerate(filters.items(), start=1):
    axes[0, c].imshow(k, cmap="RdBu_r", vmin=-np.abs(k).max(), vmax=np.abs(k).max())
    axes[0, c].set_title(f"{name} kernel")
    img = np.abs(out[c - 1]) if name == "edge detect" else out[c - 1]
    vmax = np.percentile(img, 99) if name == "edge detect" else 1
    axes[1, c].imshow(img, cmap="gray", vmin=0, vmax=vmax)
    axes[1, c].set_title(name + (" (|y|)" if name == "edge detect" else ""))
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()

# %% [markdown]
# How can we tell, with numbers, that each filter does what it claims? A simple measure of
# detail is the mean absolute difference between neighbouring pixels,
# $\operatorname{rough}(x) = \operatorname{mean}|x(i, j+1) - x(i, j)|$: blurring should lower it
# and sharpening raise it. We compare on the interior, away from the zero padding.

# %%
def rough(img):
    return float(np.mean(np.abs(np.diff(img, axis=1))))


inner = (slice(4, -4), slice(4, -4))
blur, sharp, edge, shifted = out
print(f"roughness: input {rough(small[inner]):.4f}, blurred {rough(blur[inner]):.4f}, "
      f"sharpened {rough(sharp[inner]):.4f}")
flat = bank.forward(np.full((1, 1, 12, 12), 0.7))[0]
print("edge detector on a flat image (interior):", np.abs(flat[2][2:-2, 2:-2]).max())
print("shift: max |y(i, j) - x(i, j + 2)| =", np.abs(shifted[:, :-2] - small[:, 2:]).max())

# %% [markdown]
# ## The output-size formula
#
# Along each axis, an input of size $W$, a kernel of size $K$, padding $P$ on both sides and
# stride $S$ give
#
# $$W_\text{out} = \left\lfloor \frac{W - K + 2P}{S} \right\rfloor + 1 .$$
#
# The floor matters when the stride does not divide $W - K + 2P$: the last few rows or
# columns are never reached by a whole window and are simply dropped (for example $W = 6$,
# $K = 3$, $S = 2$: $\lfloor 3/2 \rfloor + 1 = 2$, and the last column is unused). Pooling
# windows follow the same formula (above: $W = 4$, $K = S = 2$ gave $\lfloor 2/2 \rfloor + 1 = 2$).

# %%
def out_size(W, K, P, S):
    return (W - K + 2 * P) // S + 1


cases = [(5, 3, 0, 1), (5, 3, 1, 1), (5, 3, 0, 2), (6, 3, 0, 2), (7, 3, 1, 2),
         (28, 5, 2, 1), (32, 3, 1, 2), (224, 7, 3, 2), (10, 4, 0, 3)]
rows = []
print(f"{'W':>4} {'K':>2} {'P':>2} {'S':>2} | {'formula':>7} {'Conv2D':>7}")
for W, K, P, S in cases:
    x = np.zeros((1, 1, W, W))
    conv_w = lk.Conv2D(1, 1, K, stride=S, padding=P, dtype=np.float64).forward(x).shape[-1]
    rows.append((out_size(W, K, P, S), conv_w))
    print(f"{W:>4} {K:>2} {P:>2} {S:>2} | {rows[-1][0]:>7} {conv_w:>7}")

# %% [markdown]
# ## Parameters: convolution vs fully connected
#
# A convolution with $C$ input channels, $O$ output channels and a $K \times K$ kernel has
# $O \cdot C \cdot K^2 + O$ parameters, **whatever the image size** — the same filter is reused
# at every position (weight sharing). A fully connected layer producing the same output from
# the same input needs one weight per (input value, output value) pair:
# $(C H W)\cdot(O H' W') + O H' W'$.
#
# First we count the parameters of real layerkit layers on a small input, then use the
# formulas for a CIFAR-sized one (the fully connected layer there would not even be worth
# allocating).

# %%
def n_params(layer):
    return sum(p.size for p in layer.params.values())


C, O, K, H = 3, 4, 3, 8                                  # 3x8x8 input -> 4x8x8 ('same')
conv_small = lk.Conv2D(C, O, K, padding=1, dtype=np.float64)
dense_small = lk.Linear(C * H * H, O * H * H, dtype=np.float64)
formula_conv = O * C * K * K + O
formula_dense = (C * H * H) * (O * H * H) + O * H * H
print(f"3x8x8 -> 4x8x8: Conv2D {n_params(conv_small):,} (formula {formula_conv:,}), "
      f"Linear {n_params(dense_small):,} (formula {formula_dense:,})")

C, O, H = 3, 16, 32
big_conv, big_dense = O * C * K * K + O, (C * H * H) * (O * H * H) + O * H * H
print(f"3x32x32 -> 16x32x32: Conv2D {big_conv:,}, Linear {big_dense:,} "
      f"({big_dense / big_conv:,.0f}x more)")

# %% [markdown]
# ## Checks
#
# The claims above, as assertions: if layerkit (or this notebook) changes so that one of them
# no longer holds, running the notebook fails.

# %%
# cross-correlation stamps the kernel rotated by 180°, convolution copies it
assert np.allclose(corr[2:5, 2:5], asym[::-1, ::-1])
assert np.allclose(conv[2:5, 2:5], asym)
# the worked example, stride 2 and pooling against the hand-worked numbers
assert np.array_equal(y_lk, by_hand)
assert np.array_equal(correlate2d(image5, kernel3), by_hand)
assert np.array_equal(y_s2, by_hand[::2, ::2])
assert np.array_equal(max_lk, max_by_hand)
assert np.allclose(avg_lk, avg_by_hand)
# the filters do what they claim
assert out.shape == (4,) + small.shape                           # padding 2 keeps the size
assert rough(blur[inner]) < 0.5 * rough(small[inner])            # blur removes detail
assert rough(sharp[inner]) > 1.5 * rough(small[inner])           # sharpen adds it
assert abs(blur[inner].mean() - small[inner].mean()) < 0.01      # blur keeps the brightness
assert np.abs(flat[2][2:-2, 2:-2]).max() < 1e-12                 # edges: flat -> 0
assert np.allclose(shifted[:, :-2], small[:, 2:])                # shift: 2 pixels left
for k in ("box blur", "sharpen", "shift"):
    assert math.isclose(filters[k].sum(), 1.0)                   # brightness-preserving
assert abs(filters["edge detect"].sum()) < 1e-12
# the output-size formula matches the layers
for formula, conv_w in rows:
    assert conv_w == formula
assert max_lk.shape == avg_lk.shape == (out_size(4, 2, 0, 2),) * 2
# parameter counts
assert n_params(conv_small) == formula_conv and n_params(dense_small) == formula_dense
assert big_dense > 10_000 * big_conv
print("all checks passed")
