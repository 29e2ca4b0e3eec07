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
# # 05 · Recurrent networks: backpropagation through time and vanishing gradients
#
# An Elman RNN reads a sequence $x_1, \dots, x_T$ one step at a time, carrying a hidden state:
#
# $$h_t = \tanh(a_t), \qquad a_t = W_{hh} h_{t-1} + W_{ih} x_t + b, \qquad y_t = W_{hy} h_t + c .$$
#
# The same weights are used at every step. We unroll the recurrence, backpropagate through
# it by hand and with layerkit, measure how the gradient $\partial h_t / \partial h_k$ shrinks
# (or grows) with the distance $t - k$ for a tanh RNN and an LSTM, and see what gradient
# clipping does when it grows.

# %%
import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import layerkit as lk

# The matrices here are tiny (32 x 32): one BLAS thread is faster than two, and on a machine
# shared with other jobs two threads can be many times slower (see the notes at the end).
threadpool_limits(1, user_api="blas")
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## Unrolling
#
# Unrolled in time, the RNN is a deep feed-forward network with one layer per time step, all
# layers sharing $W_{hh}$, $W_{ih}$ and $b$. Backpropagation through this graph is
# backpropagation through time (BPTT).

# %%
fig, ax = plt.subplots(figsize=(10, 3.2))
steps = 5
for t in range(steps):
    X0 = 2.0 * t
    for y0, label, colour in [(0, f"$x_{t + 1}$", "#dde"), (1.2, f"$h_{t + 1}$", "#fd9"),
                              (2.4, f"$y_{t + 1}$", "#cec")]:
        ax.add_patch(plt.Rectangle((X0 - 0.35, y0 - 0.3), 0.7, 0.6, fc=colour, ec="k"))
        ax.text(X0, y0, label, ha="center", va="center", fontsize=13)
    ax.annotate("", (X0, 0.9), (X0, 0.3), arrowprops=dict(arrowstyle="->"))
    ax.annotate("", (X0, 2.1), (X0, 1.5), arrowprops=dict(arrowstyle="->"))
    ax.text(X0 + 0.08, 0.6, "$W_{ih}$", fontsize=9)
    ax.text(X0 + 0.08, 1.8, "$W_{hy}$", fontsize=9)
    ax.annotate("", (X0 - 0.35, 1.2), (X0 - 1.65, 1.2), arrowprops=dict(arrowstyle="->"))
    ax.text(X0 - 1.0, 1.3, "$W_{hh}$", ha="center", fontsize=9)
ax.text(-2.0, 1.2, "$h_0$", ha="center", va="center", fontsize=13)
ax.set_xlim(-2.4, 2.0 * steps - 1.4)
ax.set_ylim(-0.5, 2.9)
ax.axis("off")
ax.set_title("an Elman RNN unrolled over 5 steps: the same weights at every step")
plt.show()

# %% [markdown]
# ## Backpropagation through time, by hand
#
# For a loss $L = \sum_t L_t(y_t)$, the gradient reaching $h_t$ comes from its own output and
# from the future through $h_{t+1}$:
#
# $$\frac{\partial L}{\partial h_t} = W_{hy}^\top \frac{\partial L_t}{\partial y_t}
#   + W_{hh}^\top \delta_{t+1}, \qquad
#   \delta_t = \frac{\partial L}{\partial a_t} = \frac{\partial L}{\partial h_t} \odot (1 - h_t^2),$$
#
# starting from $\delta_{T+1} = 0$ and running backwards. Because the weights are shared,
# their gradients are sums over time:
#
# $$\frac{\partial L}{\partial W_{hh}} = \sum_t \delta_t h_{t-1}^\top, \qquad
#   \frac{\partial L}{\partial W_{ih}} = \sum_t \delta_t x_t^\top, \qquad
#   \frac{\partial L}{\partial b} = \sum_t \delta_t .$$
#
# Below: the forward and backward passes in numpy (batch of sequences, row vectors), compared
# with layerkit's `RNN` holding the same weights. The upstream gradient $\partial L/\partial h_t$
# from the outputs is a random array `dy`.

# %%
rng = np.random.default_rng(0)
N, T_small, D, H = 3, 7, 4, 5
x = rng.standard_normal((N, T_small, D))
dy = rng.standard_normal((N, T_small, H))                # ∂L/∂h_t from the outputs

rnn = lk.RNN(D, H, dtype=np.float64, seed=0)
rnn.params["bias_ih"][:] = rng.standard_normal(H) * 0.1
W_ih, W_hh = rnn.params["weight_ih"], rnn.params["weight_hh"]
b = rnn.params["bias_ih"] + rnn.params["bias_hh"]

# forward
hs = [np.zeros((N, H))]
for t in range(T_small):
    hs.append(np.tanh(hs[-1] @ W_hh.T + x[:, t] @ W_ih.T + b))
# backward through time
dW_hh, dW_ih, db = np.zeros_like(W_hh), np.zeros_like(W_ih), np.zeros(H)
dx, dh_next = np.zeros_like(x), np.zeros((N, H))
for t in reversed(range(T_small)):
    dh = dy[:, t] + dh_next                      # own output + the future
    delta = dh * (1 - hs[t + 1] ** 2)            # through tanh
    dW_hh += delta.T @ hs[t]
    dW_ih += delta.T @ x[:, t]
    db += delta.sum(axis=0)
    dx[:, t] = delta @ W_ih
    dh_next = delta @ W_hh                       # to step t - 1

# layerkit
rnn.zero_grad()
y_lk, h_last = rnn.forward(x)
dx_lk = rnn.backward(dy)
bptt_gaps = {
    "h": np.abs(y_lk - np.stack(hs[1:], axis=1)).max(),
    "dx": np.abs(dx_lk - dx).max(),
    "dW_hh": np.abs(rnn.grads["weight_hh"] - dW_hh).max(),
    "dW_ih": np.abs(rnn.grads["weight_ih"] - dW_ih).max(),
    "db": np.abs(rnn.grads["bias_ih"] - db).max(),
    "dh0": np.abs(rnn.dh0 - dh_next).max(),
}
print({k: f"{v:.1e}" for k, v in bptt_gaps.items()})

# %% [markdown]
# And layerkit's `RNN` against finite differences, the initial state $h_0$ included:

# %%
rnn_report = lk.gradcheck(lk.RNN(D, H, dtype=np.float64, seed=1), x,
                          forward_kwargs={"h0": rng.standard_normal((N, H))})
print(rnn_report.table())

# %% [markdown]
# ## Why gradients vanish (or explode)
#
# Unfolding the recursion for $\delta$, the gradient that step $t$ sends back to step $k < t$
# passes through a product of Jacobians:
#
# $$\frac{\partial h_t}{\partial h_k} = \prod_{j=k+1}^{t} \frac{\partial h_j}{\partial h_{j-1}}
#   = \prod_{j=k+1}^{t} \operatorname{diag}\big(\tanh'(a_j)\big)\, W_{hh} .$$
#
# With $\gamma_\phi = \max |\tanh'| = 1$ and $\gamma_\theta = \sigma_{\max}(W_{hh})$ (the largest
# singular value, i.e. the spectral norm), submultiplicativity gives the lecture's bound
#
# $$\left\| \frac{\partial h_t}{\partial h_k} \right\|_2 \le (\gamma_\theta \gamma_\phi)^{t-k}
#   = \sigma_{\max}(W_{hh})^{t-k} .$$
#
# If $\sigma_{\max}(W_{hh}) < 1$ the gradient **must** vanish exponentially; if it is larger
# it **may** explode. The LSTM adds a second path, the cell state
# $c_t = f_t \odot c_{t-1} + i_t \odot g_t$, whose Jacobian is $\operatorname{diag}(f_t)$ plus
# small terms: with forget gates near 1 the gradient decays much more slowly.
#
# We measure $\|\partial h_t / \partial h_0\|_2$ for $t = 1 \dots T$ with layerkit's own backward:
# the input sequence is repeated $H$ times in the batch, and an upstream gradient $e_i$ on row
# $i$ at step $t$ makes `layer.dh0` row $i$ of $\partial h_t / \partial h_0$ — one backward pass per
# $t$ gives the whole $H \times H$ Jacobian. For the LSTM, $c_0$ is held fixed, so this is the
# gradient reaching $h_0$ through both paths. Layerkit initialises each recurrent block of
# $W_{hh}$ orthogonal, so the default tanh RNN has $\sigma_{\max} = 1$ exactly; we also scale it to
# 0.8 and 1.5.

# %%
H, D, T, SEQS = 32, 4, 80, 2
xs = np.random.default_rng(1).standard_normal((SEQS, T, D))


def jacobian_norms(layer, x):
    """||∂h_t/∂h_0||_2 for t = 1..T (rows: sequences) from layerkit's backward."""
    n = x.shape[0]
    batch = np.repeat(x, H, axis=0)                      # row s*H + i: sequence s, unit i
    h0 = np.zeros((n * H, H))
    if isinstance(layer, lk.LSTM):
        layer.forward(batch, h0=h0, c0=np.zeros_like(h0))
    else:
        layer.forward(batch, h0=h0)
    eye = np.tile(np.eye(H), (n, 1))
    norms = np.empty((n, x.shape[1]))
    for t in range(x.shape[1]):
        dy = np.zeros((n * H, x.shape[1], H))
        dy[:, t] = eye
        layer.backward(dy)
        J = layer.dh0.reshape(n, H, H)                   # J[s] = ∂h_t/∂h_0 of sequence s
        norms[:, t] = np.linalg.norm(J, 2, axis=(1, 2))
    return norms


def tanh_rnn(gain):
    layer = lk.RNN(D, H, dtype=np.float64, seed=0)
    layer.params["weight_hh"] *= gain
    return layer


layers = {f"tanh RNN, W_hh x {g}": tanh_rnn(g) for g in (0.8, 1.0, 1.5)}
layers["LSTM"] = lk.LSTM(D, H, dtype=np.float64, seed=0)
sigma_max = {name: np.linalg.svd(layer.params["weight_hh"], compute_uv=False)[0]
             for name, layer in layers.items() if "RNN" in name}
norms = {name: jacobian_norms(layer, xs) for name, layer in layers.items()}
median = {name: np.median(v, axis=0) for name, v in norms.items()}
lags = np.arange(1, T + 1)
for name, m in median.items():
    s = f"sigma_max = {sigma_max[name]:.2f}" if name in sigma_max else ""
    print(f"{name:20s} {s:16s} t=1: {m[0]:.2e}  t=20: {m[19]:.2e}  t={T}: {m[-1]:.2e}")

# %% [markdown]
# A check of the measurement against the formula: the product of Jacobians written out in
# numpy from the default RNN's hidden states.

# %%
rnn_default = layers["tanh RNN, W_hh x 1.0"]
W_hh, W_ih = rnn_default.params["weight_hh"], rnn_default.params["weight_ih"]
b = rnn_default.params["bias_ih"] + rnn_default.params["bias_hh"]
h, J = np.zeros(H), np.eye(H)
product_norms = []
for t in range(T):
    h = np.tanh(W_hh @ h + W_ih @ xs[0, t] + b)
    J = np.diag(1 - h ** 2) @ W_hh @ J               # ∂h_t/∂h_0 = diag(tanh'(a_t)) W_hh ∂h_{t-1}/∂h_0
    product_norms.append(np.linalg.norm(J, 2))
product_gap = np.max(np.abs(np.array(product_norms) - norms["tanh RNN, W_hh x 1.0"][0])
                     / np.array(product_norms))
print(f"largest relative difference, product of Jacobians vs backward: {product_gap:.1e}")

# %%
fig, ax = plt.subplots(figsize=(9, 5.5))
colours = {"tanh RNN, W_hh x 0.8": "C0", "tanh RNN, W_hh x 1.0": "C1",
           "tanh RNN, W_hh x 1.5": "C3", "LSTM": "C2"}
for name, m in median.items():
    ax.plot(lags, m, color=colours[name], lw=2, label=f"{name} (measured)")
    ax.fill_between(lags, norms[name].min(axis=0), norms[name].max(axis=0),
                    color=colours[name], alpha=0.15)
    if name in sigma_max:
        ax.plot(lags, sigma_max[name] ** lags, "--", color=colours[name], lw=1,
                label=rf"bound $\sigma_{{\max}}^{{t-k}}$ = {sigma_max[name]:.2f}$^{{t-k}}$")
ax.set(yscale="log", xlabel="t - k (steps)", ylabel=r"$\|\partial h_t / \partial h_k\|_2$",
       title=f"gradient norm across time, H = {H} (median and range over {SEQS} sequences)")
ax.set_ylim(1e-12, 1e6)
ax.legend(fontsize=8, loc="lower left")
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown]
# What the picture says:
#
# - Each measured tanh-RNN curve lies below its dashed bound. With $\sigma_{\max} = 0.8$ the
#   bound forces exponential decay. The default RNN ($\sigma_{\max} = 1$, bound flat at 1)
#   still decays exponentially, because $|\tanh'(a)| < 1$ whenever $a \neq 0$ — the bound is
#   an upper limit, not a prediction.
# - With $\sigma_{\max} = 1.5$ the product of Jacobians grows instead of shrinking: the
#   gradient explodes (here by a factor of a few hundred over 80 steps; saturating tanh units,
#   with $\tanh' \approx 0$, keep it far below the bound $1.5^{t-k}$).
# - The LSTM starts lower (its gates scale everything) but decays with a much flatter slope:
#   over long distances it keeps orders of magnitude more gradient than the tanh RNN.

# %% [markdown]
# ## Exploding gradients and clipping
#
# When $\|\nabla\|$ explodes, one SGD step can throw the weights so far that the loss becomes
# huge or not a number. **Gradient clipping** rescales the whole gradient when its norm exceeds
# a threshold $c$, keeping its direction:
#
# $$g \leftarrow g \cdot \min\!\left(1, \frac{c}{\|g\|}\right) .$$
#
# `lk.clip_grad_norm(model, c)` does this in place between `backward` and `step`, and returns
# the norm before clipping. The task: a tanh RNN ($W_{hh}$ scaled to $\sigma_{\max} = 1.5$) plus
# a linear read-out must output its input from 4 steps earlier, $y_t = x_{t-4}$, trained with
# plain SGD at a learning rate that is too large without clipping.

# %%
H, T, N, DELAY, STEPS, LR = 32, 30, 16, 4, 200, 0.3


def delay_batch(rng):
    x = rng.standard_normal((N, T, 1))
    y = np.zeros_like(x)
    y[:, DELAY:] = x[:, :-DELAY]
    return x, y


def train(clip):
    net = lk.Sequential(lk.RNN(1, H, dtype=np.float64, seed=0),
                        lk.Linear(H, 1, dtype=np.float64, seed=1))
    net.params["0.weight_hh"][...] *= 1.5
    opt, mse, data = lk.SGD(net, lr=LR), lk.MSE(), np.random.default_rng(1)
    losses, grad_norms = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(STEPS):
            x, y = delay_batch(data)
            opt.zero_grad()
            pred = net.forward(x)
            if not np.isfinite(pred).all():              # the weights have overflowed
                losses.append(np.nan)
                break
            losses.append(mse.forward(pred, y))
            net.backward(mse.backward())
            if clip is None:
                grad_norms.append(float(np.sqrt(sum(np.sum(g * g) for g in net.grads.values()))))
            else:
                grad_norms.append(lk.clip_grad_norm(net, clip))
            opt.step()
    return np.array(losses), np.array(grad_norms)


loss_plain, gnorm_plain = train(clip=None)
loss_clip, gnorm_clip = train(clip=1.0)
print(f"without clipping: {len(loss_plain)} steps, last loss {loss_plain[-1]}, "
      f"largest gradient norm {np.nanmax(gnorm_plain):.3g}")
print(f"clipped at 1.0:   {len(loss_clip)} steps, last loss {loss_clip[-1]:.4f}, "
      f"largest gradient norm before clipping {gnorm_clip.max():.3g}")

# %%
def finite(v):
    """Non-finite values as NaN: matplotlib leaves a gap instead of warning on a log axis."""
    return np.where(np.isfinite(v), v, np.nan)


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
ax1.plot(finite(loss_plain), color="C3", label="SGD")
ax1.plot(loss_clip, color="C0", label="SGD + clip_grad_norm(1.0)")
if not np.isfinite(loss_plain[-1]):
    ax1.axvline(len(loss_plain) - 1, color="C3", ls=":", label="loss no longer finite")
ax1.set(xlabel="step", ylabel="MSE", title=f"training loss, lr = {LR}", ylim=(1e-2, 1e8))
ax1.set_yscale("log")                                 # after the limits: runaway values leave the plot
ax1.legend()
ax2.plot(finite(gnorm_plain), color="C3", label="SGD")
ax2.plot(gnorm_clip, color="C0", label="with clipping (norm before clipping)")
ax2.axhline(1.0, color="k", ls="--", lw=1, label="threshold c = 1")
ax2.set(xlabel="step", ylabel=r"$\|\nabla\|$", title="gradient norm", ylim=(1e-1, 1e12))
ax2.set_yscale("log")
ax2.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Without clipping, a large gradient throws the weights into a region where the next
# gradient is larger still; the norm runs away and the loss ends as $\infty$ or NaN. With
# clipping every step has length at most $\eta c$: the norm before clipping (plotted) still
# exceeds $c$ regularly, but the weights never run away, and the loss goes down.
#
# *A practical note.* The matrices here are tiny, so a step costs microseconds of arithmetic
# and the fixed costs dominate. With two BLAS threads on a machine shared with other jobs,
# layerkit's RNN backward was measured ~70× slower than with one (0.5 s instead of 8 ms for
# 60 steps at batch 128, H = 32), hence `threadpool_limits(1)` at the top.

# %% [markdown]
# ## Checks

# %%
# BPTT by hand equals layerkit, and layerkit's RNN passes the finite-difference check
assert all(v < 1e-12 for v in bptt_gaps.values()), bptt_gaps
assert rnn_report.passed
# the measured Jacobian norms: backward agrees with the explicit product of Jacobians
assert product_gap < 1e-8
# every tanh-RNN curve respects the bound sigma_max^(t-k) (sigma_max of the orthogonal init is 1)
assert np.isclose(sigma_max["tanh RNN, W_hh x 1.0"], 1.0)
for name, s in sigma_max.items():
    assert np.all(norms[name] <= s ** lags * (1 + 1e-9)), name
# vanishing: the default RNN decays; the LSTM decays more slowly and ends far above it
rnn_m, lstm_m = median["tanh RNN, W_hh x 1.0"], median["LSTM"]
slope = {k: np.polyfit(lags[T // 4:], np.log(median[k][T // 4:]), 1)[0]
         for k in ("tanh RNN, W_hh x 1.0", "LSTM")}
assert rnn_m[-1] < 1e-2 * rnn_m[0]
assert slope["LSTM"] > slope["tanh RNN, W_hh x 1.0"] + 0.02, slope
assert lstm_m[-1] > 10 * rnn_m[-1]
# exploding: sigma_max = 1.5 makes the gradient grow; 0.8 makes it vanish below the bound
assert median["tanh RNN, W_hh x 1.5"][-1] > 1e2
assert median["tanh RNN, W_hh x 0.8"][-1] < 0.8 ** T
# clipping keeps the loss finite and training works; without it the loss is lost
assert len(loss_clip) == STEPS and np.all(np.isfinite(loss_clip))
assert np.mean(loss_clip[-20:]) < 0.25 * loss_clip[0]
assert not np.all(np.isfinite(loss_plain)) or np.nanmax(loss_plain) > 1e6
print("all checks passed; fitted log-slopes per step:", {k: round(float(v), 3) for k, v in slope.items()})
