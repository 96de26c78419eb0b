"""Small models whose generated code is kept in generated/ (see examples/codegen.txt).

Plain numpy: each function is what you would write without symgrad.
"""
from __future__ import annotations

import numpy as np


def mlp_loss(x, labels, w1, b1, w2, b2):
    """Two-layer perceptron, tanh hidden layer, softmax cross-entropy against one-hot labels."""
    hidden = np.tanh(x @ w1 + b1)
    logits = hidden @ w2 + b2
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(labels * log_probs, axis=1))


def logistic_regression(x, y, w, b):
    """Mean binary cross-entropy of a linear model, written with log-sigmoids."""
    z = x @ w + b
    return np.mean(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))


def rnn_loss(W, U, xs):
    """A tanh recurrent network over the steps of xs (one loop in the generated code, however
    many steps): the mean squared hidden state over all steps."""
    import symgrad as sg

    def cell(h, x):
        h = np.tanh(h @ W + x @ U)
        return h, np.mean(h * h)

    _, energies = sg.scan(cell, np.zeros((xs.shape[1], W.shape[0])), xs)
    return np.mean(energies)
