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
# # 02 · Backpropagation, checked
#
# We train a small sigmoid network twice: once in plain numpy straight from the delta-rule
# equations, once with layerkit's layers, and show that the two agree to rounding error. Then
# we check the gradients by finite differences, break a backward pass on purpose to see what
# the gradient checker says, and walk through the homework workflow with the `layerkit`
# command.

# %%
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import layerkit as lk

# %% [markdown]
# ## The task and the network
#
# 64 points in the square $[-1, 1]^2$, labelled 1 when $x_1 x_2 > 0$ (an XOR pattern: no
# single line separates the classes, so a hidden layer is needed). The network is
#
# $$h = \sigma(X W_1^\top + b_1), \qquad y = \sigma(h W_2^\top + b_2), \qquad
#   \sigma(a) = \frac{1}{1 + e^{-a}},$$
#
# with 8 hidden units, trained on the mean squared error
# $E = \frac{1}{N} \sum_n (y_n - t_n)^2$ (layerkit's `MSE`; the lecture's $\tfrac12$ would only
# rescale the learning rate).

# %%
rng = np.random.default_rng(0)
N, D, H = 64, 2, 8
X = rng.uniform(-1, 1, (N, D))
T = (X[:, :1] * X[:, 1:] > 0).astype(np.float64)         # targets, shape (N, 1)
LR, STEPS = 2.0, 3000

net = lk.Sequential(lk.Linear(D, H, dtype=np.float64, seed=1), lk.Sigmoid(),
                    lk.Linear(H, 1, dtype=np.float64, seed=2), lk.Sigmoid())
# the numpy version starts from exactly the same weights
W1, b1 = net.params["0.weight"].copy(), net.params["0.bias"].copy()
W2, b2 = net.params["2.weight"].copy(), net.params["2.bias"].copy()
net

# %% [markdown]
# ## The delta rule, by hand
#
# Backpropagation names $\delta$ the gradient of $E$ with respect to a layer's
# pre-activation. With $\sigma'(a) = \sigma(a)(1 - \sigma(a))$ written through the layer's own
# output:
#
# $$\delta_2 = \frac{2}{N}(y - t) \odot y (1 - y), \qquad
#   \delta_1 = (\delta_2 W_2) \odot h (1 - h),$$
#
# and every weight gradient is "$\delta$ of the layer times the input of the layer":
#
# $$\frac{\partial E}{\partial W_2} = \delta_2^\top h, \quad
#   \frac{\partial E}{\partial b_2} = \textstyle\sum_n \delta_{2,n}, \quad
#   \frac{\partial E}{\partial W_1} = \delta_1^\top X, \quad
#   \frac{\partial E}{\partial b_1} = \textstyle\sum_n \delta_{1,n}.$$
#
# Gradient descent then updates $W \leftarrow W - \eta\, \partial E / \partial W$.

# %%
def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


hand_loss = []
for step in range(STEPS):
    h = sigmoid(X @ W1.T + b1)                 # forward
    y = sigmoid(h @ W2.T + b2)
    hand_loss.append(np.mean((y - T) ** 2))
    d2 = 2.0 / N * (y - T) * y * (1 - y)       # backward: the deltas
    d1 = (d2 @ W2) * h * (1 - h)
    W2 -= LR * d2.T @ h                        # update
    b2 -= LR * d2.sum(axis=0)
    W1 -= LR * d1.T @ X
    b1 -= LR * d1.sum(axis=0)
print(f"numpy by hand: loss {hand_loss[0]:.4f} -> {hand_loss[-1]:.4f}")

# %% [markdown]
# ## The same with layerkit
#
# The layers do the same arithmetic: `forward` caches what `backward` needs, `backward` turns
# the upstream gradient into the layer's $\delta$ and accumulates the parameter gradients,
# and `SGD` applies the update.

# %%
loss, opt = lk.MSE(), lk.SGD(net, lr=LR)
lk_loss = []
for step in range(STEPS):
    opt.zero_grad()
    lk_loss.append(loss.forward(net.forward(X), T))
    net.backward(loss.backward())
    opt.step()
print(f"layerkit:      loss {lk_loss[0]:.4f} -> {lk_loss[-1]:.4f}")

max_loss_gap = np.max(np.abs(np.array(hand_loss) - np.array(lk_loss)))
max_weight_gap = max(np.abs(a - net.params[k]).max()
                     for a, k in [(W1, "0.weight"), (b1, "0.bias"), (W2, "2.weight"), (b2, "2.bias")])
accuracy = float(np.mean((net.forward(X) > 0.5) == T))
print(f"largest difference over {STEPS} steps: loss {max_loss_gap:.1e}, "
      f"weights {max_weight_gap:.1e}; training accuracy {accuracy:.0%}")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ax1.plot(hand_loss, lw=4, alpha=0.4, label="numpy, by hand")
ax1.plot(lk_loss, "k--", lw=1, label="layerkit")
ax1.set(xlabel="step", ylabel="E (MSE)", yscale="log", title="the two training curves coincide")
ax1.legend()
grid = np.linspace(-1, 1, 121)
G = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
ax2.contourf(grid, grid, net.forward(G).reshape(121, 121), levels=20, cmap="RdBu_r", alpha=0.7)
ax2.scatter(*X.T, c=T[:, 0], cmap="RdBu_r", edgecolors="k")
ax2.set(title="network output after training", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Checking the gradients by finite differences
#
# Agreement between two implementations we wrote ourselves proves little if both follow the
# same wrong derivation. The independent check is the definition of the derivative:
# `lk.gradcheck` picks a random upstream gradient $\delta$, defines $L = \langle f(x), \delta\rangle$
# and compares `backward`'s answer with central differences
#
# $$\frac{\partial L}{\partial \theta_i} \approx \frac{L(\theta + h e_i) - L(\theta - h e_i)}{2h}$$
#
# (a fourth-order version of it, in float64) for the input and every parameter. The relative
# error should be around $10^{-10}$; the check passes below $10^{-7}$.

# %%
report = lk.gradcheck(net, X[:5])
print(report)

# %% [markdown]
# ## What a wrong backward looks like
#
# Three classic mistakes, each in a small layer of its own:
#
# 1. **a sign error**: the sigmoid's backward returns $-\delta \odot y(1 - y)$;
# 2. **a missing term**: a linear layer that never writes the bias gradient
#    $\partial L/\partial b = \sum_n \delta_n$;
# 3. **a missing factor**: a squared error $(y - t)^2$ whose backward forgets the 2 of the
#    square.
#
# The checker does not only say "fail": it compares the analytic and numeric gradients as a
# whole and names the pattern, which points at the kind of mistake.

# %%
class SignErrorSigmoid(lk.Sigmoid):
    """Sigmoid whose backward has the sign the wrong way round."""

    def backward(self, dy):
        return -super().backward(dy)


class NoBiasGradLinear(lk.Linear):
    """Linear whose backward forgets ∂L/∂b."""

    def backward(self, dy):
        before = self.grads["bias"].copy()
        dx = super().backward(dy)
        self.grads["bias"][...] = before           # undo the bias gradient: the missing term
        return dx


class SquaredErrorNoTwo(lk.Layer):
    """(y - t)^2 per element, with a backward that forgot the factor 2."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def forward(self, y):
        self._cache = y - self.target
        return self._cache ** 2

    def backward(self, dy):
        return dy * self.saved()                   # should be dy * 2 (y - t)


broken = {
    "sign error": lk.Sequential(lk.Linear(D, 3, dtype=np.float64, seed=0), SignErrorSigmoid()),
    "missing bias term": NoBiasGradLinear(D, 3, dtype=np.float64, seed=0),
    "missing factor 2": SquaredErrorNoTwo(T[:5]),
}
broken_reports = {}
for what, layer in broken.items():
    x = X[:5] if what != "missing factor 2" else rng.uniform(0, 1, (5, 1))
    broken_reports[what] = lk.gradcheck(layer, x)
    print(f"==== {what}")
    print(broken_reports[what].table(), end="\n\n")

# %% [markdown]
# The explanation under each failing tensor says what the pattern usually means. For the
# sign error:

# %%
print(broken_reports["sign error"].explain())
{what: [(t.name, t.pattern) for t in r.tensors if not t.passed]
 for what, r in broken_reports.items()}

# %% [markdown]
# ## The homework workflow
#
# Homework starts from a template: `layerkit template NAME` prints a layer with the equations
# in its docstrings and `forward`/`backward` left to write, and `layerkit gradcheck FILE:CLASS`
# checks it. Exit status 0 means every gradient is right, 1 that one is wrong, 2 that the
# layer could not be run at all (for example an unfinished template). Here we run the
# commands through `subprocess` (`python -m layerkit` is the same as the `layerkit` command)
# in a temporary directory.

# %%
workdir = Path(tempfile.mkdtemp(prefix="layerkit-homework-"))


def layerkit_cmd(*args):
    """Run `layerkit ARGS` in the work directory, print what it prints; return (status, stdout)."""
    proc = subprocess.run([sys.executable, "-m", "layerkit", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=120)
    print(f"$ layerkit {shlex.join(args)}\n{proc.stdout}{proc.stderr}(exit status {proc.returncode})")
    return proc.returncode, proc.stdout


template = subprocess.run([sys.executable, "-m", "layerkit", "template", "linear"],
                          capture_output=True, text=True, check=True).stdout
(workdir / "my_linear.py").write_text(template)
print(template)

# %% [markdown]
# Checking the template as it is: nothing is implemented yet, so the command stops with
# status 2 and says what to do.

# %%
CHECK = ["gradcheck", "my_linear.py:MyLinear",
         "--init", '{"in_features": 4, "out_features": 3}', "--input-shape", "5,4"]
status_template, _ = layerkit_cmd(*CHECK)

# %% [markdown]
# A solution, written from the docstring's equations:

# %%
solution = template.replace(
    'raise NotImplementedError("forward: y = x @ W.T + b")',
    'self.x = x\n'
    '        return x @ self.params["weight"].T + self.params["bias"]',
).replace(
    'raise NotImplementedError("backward: dW = dy.T @ x, db = dy.sum(0), dx = dy @ W")',
    'self.grads["weight"] += dy.T @ self.x\n'
    '        self.grads["bias"] += dy.sum(axis=0)\n'
    '        return dy @ self.params["weight"]',
)
print(solution[solution.index("    def forward"):])
(workdir / "my_linear.py").write_text(solution)
status_solution, _ = layerkit_cmd(*CHECK)

# %% [markdown]
# And the same solution with the product written the wrong way round (`x.T @ dy` instead of
# `dy.T @ x`): the weight gradient comes out transposed, status 1. (The layer is square here so
# that the wrong product still has the right shape.)

# %%
(workdir / "my_linear.py").write_text(solution.replace("dy.T @ self.x", "self.x.T @ dy"))
status_bug, bug_table = layerkit_cmd("gradcheck", "my_linear.py:MyLinear",
                          "--init", '{"in_features": 4, "out_features": 4}',
                          "--input-shape", "5,4")

# %% [markdown]
# ## Checks

# %%
# the hand-written delta rule and layerkit agree step by step, and the network learned XOR
assert max_loss_gap < 1e-10 and max_weight_gap < 1e-10
assert lk_loss[-1] < 0.1 * lk_loss[0] and accuracy >= 0.95
# the correct network passes its gradient check, every tensor well below the tolerance
assert report.passed and report.max_rel_error < 1e-7
# each broken layer fails, with the right pattern on the right tensor
sign = broken_reports["sign error"]
assert not sign.passed and all(t.pattern == "sign flipped" for t in sign.tensors)
nobias = {t.name: t for t in broken_reports["missing bias term"].tensors}
assert nobias["weight"].passed and nobias["x"].passed
assert nobias["bias"].status == "fail" and nobias["bias"].pattern == "all zeros"
half = broken_reports["missing factor 2"].tensors[0]
assert half.pattern == "scaled by 1/2"
# the command-line workflow: unfinished template 2, solution 0, transposed bug 1
assert (status_template, status_solution, status_bug) == (2, 0, 1)
status_of = {name: next(r for r in bug_table.splitlines()
                        if r.startswith("my_linear.py") and f" {name} " in r).split("  ")[-1].strip()
             for name in ("x", "weight", "bias")}
assert status_of == {"x": "pass", "weight": "FAIL: transposed", "bias": "pass"}, status_of
print("all checks passed")
