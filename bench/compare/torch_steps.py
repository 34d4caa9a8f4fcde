#!/usr/bin/env python3
"""PyTorch CPU train steps per second of detrun's reference network.

Same network, batch, optimiser and data as bench/train_steps: Fashion-MNIST
train rows scaled by 1/255, batch 100, conv 3x3x8 relu, maxpool 2, conv 3x3x8
relu, maxpool 2, dense 128 relu, dropout 0.2, dense 10, softmax cross-entropy,
Adam(1e-3, 0.9, 0.999, 1e-7). Each fit is `steps` batches; prints the median
steps/s of `runs` fits after one warm-up fit, per mode ("deterministic":
torch.use_deterministic_algorithms(True); "default").

  torch_steps.py THREADS [steps (20)] [runs (5)] [data dir]
Prints: torch MODE THREADS STEPS_PER_S
"""
import gzip
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def load(d):
    with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz"), "rb") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.gz"), "rb") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.tensor(x, dtype=torch.float32) / 255.0, torch.tensor(y, dtype=torch.int64)


def net():
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(200, 128), nn.ReLU(),
                         nn.Dropout(0.2), nn.Linear(128, 10))


def fit(x, y, steps):
    m = net()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for s in range(steps):
        xb, yb = x[s * 100:(s + 1) * 100], y[s * 100:(s + 1) * 100]
        opt.zero_grad()
        loss_fn(m(xb), yb).backward()
        opt.step()
    return time.perf_counter() - t0


def main():
    threads = int(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    d = sys.argv[4] if len(sys.argv) > 4 else os.environ.get(
        "DETRUN_DATA", "/usr/share/datasets/fashion-mnist")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = load(d)
    for mode in ("deterministic", "default"):
        torch.use_deterministic_algorithms(mode == "deterministic")
        secs = [fit(x, y, steps) for _ in range(runs + 1)][1:]
        print("torch %s %d %.1f" % (mode, threads, steps / statistics.median(secs)), flush=True)


if __name__ == "__main__":
    main()
