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
# # 03 · A CNN on MNIST: LeNet-5
#
# LeNet-5 (LeCun et al., 1998) is the convolutional network of the lecture: two
# convolution + pooling stages that turn a 28×28 digit into 16 feature maps of 5×5, followed by
# three fully connected layers. This notebook trains layerkit's `lenet5` on MNIST-5k (5,000 real
# MNIST digits, 4,000 for training and 1,000 for testing, balanced over the ten classes) and
# then looks inside it: the learned first-layer filters, the feature maps of one digit from
# layer to layer, the confusion matrix and the digits it gets wrong.
#
# To keep the notebook quick this is a **short run: 4 epochs** (a few seconds). The full recipe,
# 20 epochs, is `layerkit train lenet` and reaches 97 % test accuracy (the measured numbers are
# in `layerkit.models.lenet5`'s docstring). Every number quoted below is asserted in the last
# cell.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import layerkit as lk
from layerkit.data import batches, load_mnist5k

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## The data

# %%
x_train, y_train, x_test, y_test = load_mnist5k()
print("train:", x_train.shape, x_train.dtype, " test:", x_test.shape,
      " pixel range:", (x_train.min(), x_train.max()))
print("test images per class:", np.bincount(y_test, minlength=10))

fig, axes = plt.subplots(2, 10, figsize=(10, 2.3))
for digit in range(10):
    for row in range(2):
        ax = axes[row, digit]
        ax.imshow(x_train[np.flatnonzero(y_train == digit)[row], 0], cmap="gray_r")
        ax.set_xticks([]), ax.set_yticks([])
    axes[0, digit].set_title(str(digit))
fig.suptitle("MNIST-5k: two training images per class")
plt.show()

# %% [markdown]
# ## The network
#
# `lenet5()` is a `Sequential` (with `predict`): 5×5 convolutions with 6 and 16 filters, ReLU,
# 2×2 max pooling, then 400 → 120 → 84 → 10. The first convolution pads by 2 so that the 28×28
# input keeps its size, as the original 32×32 input did without padding.

# %%
model = lk.models.lenet5(seed=0)
model.summary((1, 1, 28, 28))

# %% [markdown]
# ## Training
#
# Adam with learning rate 2·10⁻³ (twice the 20-epoch recipe's, since we stop early),
# mini-batches of 64, cross-entropy on the logits. To draw curves finer than one point per
# epoch, `fit` is given a callable that serves **half an epoch** at a time: each "fit epoch" is
# half a pass over the training set (the two halves of a pass come from one shuffle, a new one
# for every pass). After each half we record the test loss and accuracy (`fit` computes them)
# and the accuracy on a fixed subset of 1,000 training images (the `log` callback).
#
# Training runs under `threadpool_limits(1, user_api="blas")`: the matrix products here are
# small, and when another process holds one of this machine's two cores, a second OpenBLAS
# thread spends its time waiting for that core and stalls every product it takes part in.

# %%
EPOCHS, BATCH, LR = 4, 64, 2e-3
train_subset = np.arange(0, len(x_train), 4)            # 1,000 fixed training images


def half_epochs(k):
    """Batches of half-epoch k = 1, 2, ...: pass p = (k + 1) // 2, shuffled with seed p."""
    epoch = (k + 1) // 2
    order = list(batches(x_train, y_train, BATCH, seed=epoch))
    half = len(order) // 2
    return order[:half] if k % 2 else order[half:]


train_acc = []


def record_train_accuracy(record):
    train_acc.append(np.mean(model.predict(x_train[train_subset]) == y_train[train_subset]))


model = lk.models.lenet5(seed=0)
start = time.perf_counter()
with threadpool_limits(1, user_api="blas"):
    history = lk.train.fit(model, lk.CrossEntropy(), lk.Adam(model, lr=LR), half_epochs,
                           epochs=2 * EPOCHS, batch_size=256, val_data=(x_test, y_test),
                           metrics=("accuracy",), progress=False, log=record_train_accuracy)
train_seconds = time.perf_counter() - start
print(history)
print(f"{EPOCHS} epochs in {train_seconds:.1f} s")

# %%
passes = np.arange(1, 2 * EPOCHS + 1) / 2                # x axis in epochs
test_acc = np.array(history.column("val_accuracy"))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.plot(passes, history.column("train_loss"), "o-", label="training (running mean)")
ax1.plot(passes, history.column("val_loss"), "s-", label="test")
ax1.set_xlabel("epoch"), ax1.set_ylabel("cross-entropy"), ax1.set_title("loss")
ax1.legend()
ax2.plot(passes, 100 * np.array(train_acc), "o-", label="training (1,000 fixed images)")
ax2.plot(passes, 100 * test_acc, "s-", label="test")
ax2.axhline(97, color="gray", ls=":", label="full 20-epoch run (97 %)")
ax2.set_xlabel("epoch"), ax2.set_ylabel("accuracy (%)"), ax2.set_title("accuracy")
ax2.legend()
plt.tight_layout()
plt.show()

pred = model.predict(x_test)
test_accuracy = float(np.mean(pred == y_test))
print(f"after {EPOCHS} epochs: test accuracy {100 * test_accuracy:.1f} %, "
      f"training accuracy {100 * train_acc[-1]:.1f} % (1,000 fixed images)")

# %% [markdown]
# The training loss printed by `fit` is a running mean over the half epoch, taken while the
# weights were still changing, so early on it lies above the test loss measured at the end of
# the half epoch. After four passes the two accuracies are still close: the network has not
# started to memorise its 4,000 training images yet.

# %% [markdown]
# ## What the first layer learned
#
# The six 5×5 kernels of the first convolution, `model[0].params["weight"]` of shape
# (6, 1, 5, 5). Red is a positive weight, blue a negative one (each on its own symmetric colour
# scale). They are only four epochs old and still noisy, but several already pair a positive
# band with a negative one (filters 2 and 4 most clearly): such a kernel responds to an edge
# of one orientation, the kind of detector first layers of image networks typically learn.
# The feature maps below show it: one map lights up on the horizontal bar of a 4, another
# on its slanted stroke.

# %%
w1 = model[0].params["weight"][:, 0]
fig, axes = plt.subplots(1, 6, figsize=(10, 2))
for i, ax in enumerate(axes):
    lim = np.abs(w1[i]).max()
    ax.imshow(w1[i], cmap="bwr", vmin=-lim, vmax=lim)
    ax.set_title(f"filter {i}"), ax.set_xticks([]), ax.set_yticks([])
fig.suptitle("conv1 weights (5×5)")
plt.show()

# %% [markdown]
# ## Feature maps of one digit, layer by layer
#
# Running the `Sequential` one layer at a time shows what each stage passes on. The first
# layer's maps are the digit filtered by the six kernels above: still images of the digit,
# with one kind of edge lit up in each. Pooling halves the resolution. The second convolution
# combines all six maps, and its 16 maps of 10×10 (5×5 after pooling) no longer look like the
# digit: each says *where* some combination of strokes occurs. The last layers are vectors
# (120, 84 and 10 numbers), and the final ten are the class scores: low-level pixels turn into
# higher-level, more abstract and more class-specific features.

# %%
digit_index = int(np.flatnonzero((y_test == 4) & (pred == 4))[0])   # a 4 it gets right
activations, a = [], x_test[digit_index:digit_index + 1]
for layer in model:
    a = layer.forward(a)
    activations.append(a[0])
names = [type(layer).__name__ for layer in model]
for i, (name, act) in enumerate(zip(names, activations)):
    print(f"{i:2d} {name:10s} -> {act.shape}")


def show_maps(maps, title, cols):
    rows = int(np.ceil(len(maps) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.2 + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, m in zip(axes.ravel(), maps):
        ax.imshow(m, cmap="viridis")
    fig.suptitle(title)
    plt.show()


plt.figure(figsize=(1.6, 1.6))
plt.imshow(x_test[digit_index, 0], cmap="gray_r"), plt.axis("off")
plt.title(f"input (label {y_test[digit_index]})")
plt.show()
show_maps(activations[1], "after conv1 + ReLU: 6 maps of 28×28", 6)
show_maps(activations[2], "after pool1: 6 maps of 14×14", 6)
show_maps(activations[4], "after conv2 + ReLU: 16 maps of 10×10", 8)
show_maps(activations[5], "after pool2: 16 maps of 5×5 (flattened into 400 numbers)", 8)

probs = lk.models.softmax(activations[-1])
fig, axes = plt.subplots(1, 3, figsize=(11, 2.4), gridspec_kw={"width_ratios": [3, 2, 1.3]})
axes[0].bar(np.arange(120), activations[8]), axes[0].set_title("fc1 + ReLU (120)")
axes[1].bar(np.arange(84), activations[10]), axes[1].set_title("fc2 + ReLU (84)")
axes[2].bar(np.arange(10), probs), axes[2].set_title("softmax of the 10 logits")
axes[2].set_xticks(range(10))
plt.tight_layout()
plt.show()
print("predicted:", int(np.argmax(probs)), " probability:", round(float(probs.max()), 3))
print("fraction of zeros after each ReLU:",
      [round(float(np.mean(activations[i] == 0)), 2) for i in (1, 4, 8, 10)])

# %% [markdown]
# ## Confusion matrix
#
# Row *i*, column *j*: how many test images of digit *i* were classified as *j*. The diagonal
# holds the correct answers; each row sums to the 100 test images of its class.

# %%
confusion = np.zeros((10, 10), dtype=np.int64)
np.add.at(confusion, (y_test, pred), 1)

fig, ax = plt.subplots(figsize=(5.5, 5))
ax.imshow(confusion, cmap="Blues")
for i in range(10):
    for j in range(10):
        if confusion[i, j]:
            ax.text(j, i, confusion[i, j], ha="center", va="center", fontsize=8,
                    color="white" if confusion[i, j] > 50 else "black")
ax.set_xticks(range(10)), ax.set_yticks(range(10))
ax.set_xlabel("predicted"), ax.set_ylabel("true")
ax.set_title(f"confusion matrix (test, accuracy {100 * test_accuracy:.1f} %)")
plt.show()

per_class = np.diag(confusion) / confusion.sum(axis=1)
off = confusion - np.diag(np.diag(confusion))
worst_pair = np.unravel_index(np.argmax(off), off.shape)
print("per-class accuracy:", per_class)
print(f"most frequent confusion: {worst_pair[0]} taken for {worst_pair[1]} "
      f"({off[worst_pair]} times)")

# %% [markdown]
# ## Misclassified examples
#
# The test digits the network gets wrong, with its answer and the probability it gave that
# answer. Some are ambiguous even to a human (the first 4 → 9, whose top nearly closes; the
# 0 → 9 with a dent), others are plainly readable and still taken with high confidence (the
# 5 → 6 and the 3 → 5): those are what the longer run learns to fix.

# %%
wrong = np.flatnonzero(pred != y_test)
wrong_probs = model.predict_proba(x_test[wrong]).max(axis=1)
print(f"{len(wrong)} of {len(y_test)} test images misclassified")
shown = wrong[:24]
fig, axes = plt.subplots(3, 8, figsize=(10, 4.4))
for ax in axes.ravel():
    ax.axis("off")
for ax, i, p in zip(axes.ravel(), shown, wrong_probs):
    ax.imshow(x_test[i, 0], cmap="gray_r")
    ax.set_title(f"{y_test[i]} → {pred[i]} ({p:.2f})", fontsize=9)
fig.suptitle("true → predicted (probability of the prediction)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Checks

# %%
# the short run learned: test accuracy >= 93 % after 4 epochs (the full 20-epoch run: 97 %)
assert test_accuracy >= 0.93, test_accuracy
assert test_acc[-1] == test_accuracy and test_acc[-1] > test_acc[0]
assert history.column("train_loss")[-1] < 0.5 * history.column("train_loss")[0]
assert history.column("val_loss")[-1] < history.column("val_loss")[0]
# no heavy over-fitting in 4 epochs: training and test accuracy within 3 points
assert abs(train_acc[-1] - test_accuracy) < 0.03, (train_acc[-1], test_accuracy)
# the feature maps have the shapes of LeNet-5's stages
assert [a.shape for a in activations[:6]] == [(6, 28, 28), (6, 28, 28), (6, 14, 14),
                                              (16, 10, 10), (16, 10, 10), (16, 5, 5)]
assert activations[-1].shape == (10,) and np.isclose(probs.sum(), 1.0)
assert np.argmax(probs) == y_test[digit_index] == 4
# the confusion matrix: rows sum to the 100 test images of each class, the whole to 1,000,
# the diagonal to the correct answers, and every class is mostly recognised
assert (confusion.sum(axis=1) == np.bincount(y_test, minlength=10)).all()
assert (confusion.sum(axis=1) == 100).all() and confusion.sum() == 1000
assert np.trace(confusion) == np.sum(pred == y_test)
assert per_class.min() >= 0.8, per_class
# the misclassified images are exactly the off-diagonal entries
assert len(wrong) == off.sum() == 1000 - np.trace(confusion)
print("all checks passed")
