"""The classic mistakes in function-pair homework, one backward each, next to the correct
forward imported from cs231n_layers: ``layerkit gradcheck cs231n_broken.py:relu_forward
--backward relu_backward_mask_inverted --shape x=3,4``."""

import numpy as np

from cs231n_layers import (affine_forward, argmax_in_window, batchnorm_forward,  # noqa: F401
                           conv_backward_windows, conv_forward_naive, lstm_forward,
                           lstm_step_backward, max_pool_backward_routed, max_pool_forward_naive,
                           relu_forward, rnn_forward, rnn_step_backward)


def affine_backward_dx_not_reshaped(dout, cache):
    x, w = cache
    return dout @ w.T, x.reshape(len(x), -1).T @ dout, dout.sum(axis=0)


def conv_backward_stride_ignored(dout, cache):
    return conv_backward_windows(dout, cache, 1, dout.shape[2])


def conv_backward_last_row_skipped(dout, cache):
    return conv_backward_windows(dout, cache, cache[2]["stride"], dout.shape[2] - 1)


def max_pool_backward_argmax_swapped(dout, cache):
    return max_pool_backward_routed(dout, cache, lambda window: argmax_in_window(window)[::-1])


def batchnorm_backward_mean_term_missing(dout, cache):
    xhat, gamma, std = cache
    dxhat = dout * gamma
    dx = (dxhat - xhat * (dxhat * xhat).mean(axis=0)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def relu_backward_mask_inverted(dout, cache):
    return dout * (cache <= 0)


def softmax_loss_true_class_missing(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    N = len(x)
    return -log_p[np.arange(N), y].mean(), np.exp(log_p) / N


def rnn_backward_without_dh_next(dh, cache):
    N, T, _ = dh.shape
    x0, _, Wx, Wh, _ = cache[0]
    dx = np.zeros((N, T, x0.shape[1]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0])
    for t in reversed(range(T)):
        dx[:, t], dprev, dwx, dwh, dbt = rnn_step_backward(dh[:, t], cache[t])
        dWx, dWh, db = dWx + dwx, dWh + dwh, db + dbt
    return dx, dprev, dWx, dWh, db


def lstm_backward_without_cell_path(dh, cache):
    N, T, H = dh.shape
    Wx, Wh = cache[0][3], cache[0][4]
    dx = np.zeros((N, T, Wx.shape[0]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, _, dwx, dwh, dbt = lstm_step_backward(
            dh[:, t] + dprev_h, np.zeros((N, H)), cache[t])
        dWx, dWh, db = dWx + dwx, dWh + dwh, db + dbt
    return dx, dprev_h, dWx, dWh, db
