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
# # 04 · Softmax and cross-entropy
#
# The softmax turns a vector of scores (logits) $z \in \mathbb{R}^K$ into probabilities,
#
# $$p_i = \operatorname{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}},$$
#
# and the cross-entropy against a target distribution $y$ (one-hot for a class label) is
# $L = -\sum_k y_k \log p_k$. This notebook looks at the softmax's Jacobian, shows why the
# gradient of the two together is simply $p - y$, and why a library never computes them the
# naive way.

# %%
import matplotlib.pyplot as plt
import numpy as np

import layerkit as lk
from layerkit import softmax_jacobian

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The Jacobian of the softmax
#
# Differentiating the quotient gives, with $\delta_{ij}$ the Kronecker delta,
#
# $$J_{ij} = \frac{\partial p_i}{\partial z_j} = p_i(\delta_{ij} - p_j), \qquad
#   J = \operatorname{diag}(p) - p p^\top .$$
#
# Each output depends on *every* logit: raising $z_j$ raises $p_j$ (diagonal, positive) and
# lowers all the others (off-diagonal, negative). $J$ is symmetric and each row sums to 0,
# because the probabilities always sum to 1. `softmax_jacobian(p)` builds the matrix from
# the softmax output.

# %%
z = np.array([2.0, 1.0, 0.1, -1.0, 3.0])
p = lk.Softmax().forward(z[None])[0]
J = softmax_jacobian(p)


def numeric_jacobian(f, z, h=1e-6):
    """Central differences, one column per logit."""
    cols = []
    for j in range(z.size):
        e = np.zeros_like(z)
        e[j] = h
        cols.append((f(z + e) - f(z - e)) / (2 * h))
    return np.stack(cols, axis=1)


def softmax_np(z):
    e = np.exp(z - z.max())
    return e / e.sum()


J_num = numeric_jacobian(softmax_np, z)
print("p =", p)
print("J =\n", J)
print(f"max |J - finite differences| = {np.abs(J - J_num).max():.1e}")

# %%
peaked = 4 * z                                   # the same logits, 4x larger: a confident softmax
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
lim = np.abs(J).max()                            # one colour scale for both panels
for ax, logits, title in [(axes[0], z, "z"), (axes[1], peaked, "4 z (more confident)")]:
    pk = softmax_np(logits)
    Jk = softmax_jacobian(pk)
    im = ax.imshow(Jk, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"softmax Jacobian for {title}\np = {np.round(pk, 2)}", fontsize=10)
    ax.set_xlabel("j (logit)")
    ax.set_ylabel("i (probability)")
    ax.set_xticks(range(5))
    ax.set_yticks(range(5))
    for (i, j), v in np.ndenumerate(Jk):
        ax.text(j, i, f"{v:.3f}".replace("-0.000", "0.000"), ha="center", va="center",
                fontsize=8)
fig.colorbar(im, ax=axes, shrink=0.8)
plt.show()

# %% [markdown]
# The more confident the softmax, the smaller its Jacobian: as $p$ approaches a one-hot
# vector, $p_i(\delta_{ij} - p_j) \to 0$ everywhere. A saturated softmax passes almost no
# gradient — one reason a softmax output is not trained with a squared error.

# %% [markdown]
# ## Why softmax + cross-entropy backpropagates $p - y$
#
# By the chain rule through the Jacobian, with $\partial L / \partial p_i = -y_i / p_i$,
#
# $$\frac{\partial L}{\partial z_j} = \sum_i \frac{\partial L}{\partial p_i} J_{ij}
#   = -\sum_i \frac{y_i}{p_i}\, p_i (\delta_{ij} - p_j)
#   = -y_j + p_j \sum_i y_i = p_j - y_j ,$$
#
# using $\sum_i y_i = 1$. The $1/p_i$ of the logarithm cancels the $p_i$ of the softmax, so the
# fused gradient needs neither a division nor the $K \times K$ Jacobian. We check it three
# ways: through the Jacobian, from layerkit's `CrossEntropy` (which works from logits), and
# by finite differences of the loss.

# %%
y = np.eye(5)[1]                                   # target: class 1
chain = softmax_jacobian(p).T @ (-y / p)            # the chain rule, unfused
fused = p - y

ce = lk.CrossEntropy(reduction="sum")
loss_value = ce.forward(z[None], np.array([1]))
from_layerkit = ce.backward()[0]
numeric = numeric_jacobian(lambda v: np.array([-np.log(softmax_np(v)[1])]), z)[0]

print(f"loss = {loss_value:.4f}  (-log p_1 = {-np.log(p[1]):.4f})")
print("chain rule  :", chain)
print("p - y       :", fused)
print("CrossEntropy:", from_layerkit)
print("finite diff.:", numeric)

# %% [markdown]
# The same holds layer by layer: layerkit's `Softmax` layer, given the upstream gradient
# $-y/p$, returns $p - y$ too — and the whole softmax + cross-entropy pair passes a gradient
# check.

# %%
sm = lk.Softmax()
sm.forward(z[None])
via_layer = sm.backward((-y / p)[None])[0]
print("Softmax.backward(-y/p):", via_layer)
print(lk.gradcheck(lk.Softmax(), np.random.default_rng(0).standard_normal((3, 5))).table())

# %% [markdown]
# ## Large logits: why nobody computes $e^{z}$ directly
#
# In float64, $e^{z}$ overflows to $\infty$ for $z > 709.8$ (float32: $z > 88.7$). Logits of
# a few hundred are not exotic for a badly scaled or diverging network. The naive formula then
# gives $\infty/\infty = $ NaN. The cure is exact algebra: for any constant $m$,
#
# $$\operatorname{softmax}(z) = \operatorname{softmax}(z - m), \qquad
#   \log p_k = z_k - m - \log \sum_j e^{z_j - m},$$
#
# and with $m = \max_j z_j$ every exponent is $\le 0$, so nothing overflows and the sum is at
# least 1 (the log-sum-exp trick). Underflow of very negative exponents to 0 is harmless:
# that is the right answer to 300 digits.

# %%
def naive_cross_entropy(z, label):
    e = np.exp(z)
    return -np.log(e[label] / e.sum())


base = np.array([1.0, -2.0, 0.5, 3.0])
label = 3
rows = []
with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
    for scale in [1, 10, 100, 300, 1000]:
        logits = scale * base
        stable_ce = lk.CrossEntropy()
        stable = stable_ce.forward(logits[None], np.array([label]))
        grad_ok = bool(np.isfinite(stable_ce.backward()).all())
        rows.append((scale, naive_cross_entropy(logits, label), stable, grad_ok))
print(f"{'scale':>6} {'naive loss':>12} {'CrossEntropy':>13} {'gradient finite':>16}")
for scale, naive, stable, grad_ok in rows:
    print(f"{scale:>6} {naive:>12.6g} {stable:>13.6g} {str(grad_ok):>16}")

# %% [markdown]
# The correct loss for label 3 is $\log\left(1 + \sum_{j \ne 3} e^{s(z_j - z_3)}\right)$, which
# goes to 0 as the scale $s$ grows: the model is right and ever more confident. The naive
# computation agrees while $e^{3s}$ fits in a float64, and returns NaN from scale 300 on
# ($e^{900}$ overflows, $\infty / \infty$ = NaN); the log-sum-exp version stays finite. Now the
# opposite case: the label is the *wrong* class, so the loss should grow linearly with the
# scale ($\approx s\,(z_3 - z_1)$).

# %%
wrong = 1                                            # the least likely class
with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
    wrong_rows = [(s, naive_cross_entropy(s * base, wrong),
                   lk.CrossEntropy().forward((s * base)[None], np.array([wrong])),
                   s * (base.max() - base[wrong]))
                  for s in [1, 10, 100, 300, 1000]]
print(f"{'scale':>6} {'naive loss':>12} {'CrossEntropy':>13} {'s (z_max - z_1)':>16}")
for s, naive, stable, approx in wrong_rows:
    print(f"{s:>6} {naive:>12.6g} {stable:>13.6g} {approx:>16.6g}")

# %% [markdown]
# Here the naive version returns $\infty$ from scale 300 on: the numerator $e^{-600}$
# underflows to 0, the denominator overflows, and $-\log 0 = \infty$. `CrossEntropy` returns
# the finite loss, equal to $s\,(z_3 - z_1)$ up to a correction that vanishes as $s$ grows.

# %% [markdown]
# ## Checks

# %%
# the Jacobian: matches finite differences, symmetric, rows sum to 0, diag(p) - p p^T
assert np.abs(J - J_num).max() < 1e-9
assert np.allclose(J, J.T) and np.allclose(J.sum(axis=1), 0)
assert np.allclose(J, np.diag(p) - np.outer(p, p))
assert np.abs(softmax_jacobian(softmax_np(peaked))).max() < np.abs(J).max()   # saturation
# the fused gradient p - y equals the chain rule, CrossEntropy's backward and finite differences
assert np.allclose(chain, fused) and np.allclose(from_layerkit, fused)
assert np.allclose(numeric, fused, atol=1e-8) and np.allclose(via_layer, fused)
assert np.isclose(loss_value, -np.log(p[1]))
# large logits: the naive loss breaks, CrossEntropy stays finite and correct
by_scale = {s: (naive, stable, ok) for s, naive, stable, ok in rows}
assert all(np.isfinite(stable) and ok for _, stable, ok in by_scale.values())
assert not np.isfinite(by_scale[1000][0]) and not np.isfinite(by_scale[300][0])
assert np.isclose(by_scale[1][0], by_scale[1][1])                    # equal while it works
for s, naive, stable, approx in wrong_rows:
    assert np.isfinite(stable) and abs(stable - approx) < 1e-3 + 0.05 * approx
assert not np.isfinite(wrong_rows[-1][1]) and not np.isfinite(wrong_rows[-2][1])
print("all checks passed")
