"""Homework written as function pairs: foo_forward(...) -> (out, cache), foo_backward(dout, cache)
-> the gradients of forward's array arguments in order. Correct solutions."""

import numpy as np


def affine_forward(x, w, b):
    """out = x.reshape(N, D) @ w + b for x of shape (N, d_1, ..., d_k)."""
    out = x.reshape(len(x), -1) @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(len(x), -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def leaky_relu_forward(x, lrelu_param):
    slope = lrelu_param.get("alpha", 0.01)
    return np.where(x > 0, x, slope * x), (x, slope)


def leaky_relu_backward(dout, cache):
    x, slope = cache
    return np.where(x > 0, dout, slope * dout)


def _out_size(size, k, stride, pad):
    return 1 + (size + 2 * pad - k) // stride


def conv_forward_naive(x, w, b, conv_param):
    """Cross-correlation of x (N, C, H, W) with w (F, C, HH, WW), bias b (F,)."""
    s, p = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = _out_size(x.shape[2], HH, s, p), _out_size(x.shape[3], WW, s, p)
    out = np.zeros((len(x), F, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, conv_param)


def conv_backward_naive(dout, cache):
    return conv_backward_windows(dout, cache, cache[2]["stride"], dout.shape[2])


def conv_backward_windows(dout, cache, stride, rows_out):
    """The backward of conv_forward_naive over the first ``rows_out`` output rows, windows
    ``stride`` apart."""
    x, w, conv_param = cache
    p = conv_param["pad"]
    _, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(rows_out):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW)
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    db = dout.sum(axis=(0, 2, 3))
    return dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]], dw, db


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    out = np.zeros((N, C, 1 + (H - ph) // s, 1 + (W - pw) // s))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    return max_pool_backward_routed(dout, cache, argmax_in_window)


def argmax_in_window(window):
    """(row, column) of the largest element of a 2-d window."""
    return np.unravel_index(np.argmax(window), window.shape)


def max_pool_backward_routed(dout, cache, route):
    """Each dout element goes to the window position ``route(window)`` returns."""
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    r, q = route(x[n, c, i * s:i * s + ph, j * s:j * s + pw])
                    dx[n, c, i * s + r, j * s + q] += dout[n, c, i, j]
    return dx


def batchnorm_forward(x, gamma, beta, bn_param):
    """Training-mode batch norm over axis 0; bn_param keeps the running statistics."""
    eps = bn_param.get("eps", 1e-5)
    mu, var = x.mean(axis=0), x.var(axis=0)
    xhat = (x - mu) / np.sqrt(var + eps)
    m = bn_param.get("momentum", 0.9)
    bn_param["running_mean"] = m * bn_param.get("running_mean", 0) + (1 - m) * mu
    return gamma * xhat + beta, (xhat, gamma, np.sqrt(var + eps))


def batchnorm_backward(dout, cache):
    xhat, gamma, std = cache
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def softmax_loss(x, y):
    """Mean cross-entropy of scores x (N, C) against labels y (N,), and its gradient."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    N = len(x)
    loss = -log_p[np.arange(N), y].mean()
    dx = np.exp(log_p)
    dx[np.arange(N), y] -= 1
    return loss, dx / N


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    """x (N, T, D), h0 (N, H) -> h (N, T, H)."""
    N, T, _ = x.shape
    h, caches, prev = np.zeros((N, T, len(b))), [], h0
    for t in range(T):
        prev, cache = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        h[:, t] = prev
        caches.append(cache)
    return h, caches


def rnn_backward(dh, cache):
    N, T, _ = dh.shape
    x0, _, Wx, Wh, _ = cache[0]
    dx = np.zeros((N, T, x0.shape[1]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0])
    dprev = np.zeros((N, Wh.shape[0]))
    for t in reversed(range(T)):
        dx[:, t], dprev, dwx, dwh, dbt = rnn_step_backward(dh[:, t] + dprev, cache[t])
        dWx, dWh, db = dWx + dwx, dWh + dwh, db + dbt
    return dx, dprev, dWx, dWh, db


def _sigmoid(a):
    return 0.5 * (1 + np.tanh(0.5 * a))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """Gates in the order i, f, o, g of the 4H columns of x @ Wx + prev_h @ Wh + b."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    da = np.hstack([dc * g * i * (1 - i), dc * prev_c * f * (1 - f),
                    dnext_h * tc * o * (1 - o), dc * i * (1 - g ** 2)])
    return (da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0))


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    H = h0.shape[1]
    h, caches = np.zeros((N, T, H)), []
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(T):
        prev_h, prev_c, cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches


def lstm_backward(dh, cache):
    N, T, H = dh.shape
    Wx, Wh = cache[0][3], cache[0][4]
    dx = np.zeros((N, T, Wx.shape[0]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H)
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, dwx, dwh, dbt = lstm_step_backward(
            dh[:, t] + dprev_h, dprev_c, cache[t])
        dWx, dWh, db = dWx + dwx, dWh + dwh, db + dbt
    return dx, dprev_h, dWx, dWh, db


def softmax_loss_naive(W, X, y, reg):
    """Loss of a linear classifier with weights W (D, C) on data X (N, D), labels y, with
    L2 regularisation reg·ΣW², and its gradient dW only (X is data)."""
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(len(X)):
        scores = X[i] @ W
        p = np.exp(scores - scores.max())
        p /= p.sum()
        loss -= np.log(p[y[i]])
        p[y[i]] -= 1
        dW += np.outer(X[i], p)
    loss = loss / len(X) + reg * np.sum(W * W)
    return loss, dW / len(X) + 2 * reg * W
