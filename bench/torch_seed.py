#!/usr/bin/env python3
"""The seed protocol in PyTorch + cuDNN, as a peer for detrun's GPU timings.

Same network, data, optimiser and protocol as docs/determinism.md and
DESIGN.md describe: Fashion-MNIST train set scaled by 1/255, k-fold CV from a
seeded shuffle, Keras' validation_split (the last 20% of the training rows,
evaluated each epoch), batch 100, rows shuffled each epoch, conv 3x3x8 relu,
maxpool 2, conv 3x3x8 relu, maxpool 2, dense 128 relu, dropout 0.2, dense 10,
softmax cross-entropy, Adam(1e-3, 0.9, 0.999, 1e-7), Glorot-uniform weights
and zero biases. The data set is put on the GPU once; batches are gathered
there, as detrun does.

Modes: "deterministic" = torch.use_deterministic_algorithms(True),
cudnn.deterministic = True, cudnn.benchmark = False, no TF32;
"default" = PyTorch's defaults (cuDNN may pick non-deterministic algorithms).

Prints one line per fold and a summary line per mode:
  MODE seconds=S folds=F mean_loss=L mean_accuracy=A fingerprint=H
where H is a SHA-256 (first 32 hex digits) of the final weights of the last fold.
"""
import argparse
import hashlib
import os
import sys
import time

# Must be set before CUDA starts for cuBLAS to be deterministic.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np

import idx_data   # bench/idx_data.py, beside this file
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.fc1 = nn.Linear(200, 128)
        self.fc2 = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.2)
        for m in (self.conv1, self.conv2, self.fc1, self.fc2):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.drop(F.relu(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


def evaluate(model, x, y, batch=1000):
    model.eval()
    loss = 0.0
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out = model(x[i:i + batch])
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return loss / x.shape[0], correct / x.shape[0]


def run(mode, x_all, y_all, args, dev):
    det = mode == "deterministic"
    # warn_only: an op without a deterministic kernel warns (in the log) instead of failing.
    torch.use_deterministic_algorithms(det, warn_only=True)
    torch.backends.cudnn.deterministic = det
    torch.backends.cudnn.benchmark = False
    if det:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    else:
        torch.backends.cudnn.allow_tf32 = True      # PyTorch's default for convolutions
        torch.backends.cuda.matmul.allow_tf32 = False
    n = x_all.shape[0]
    perm = np.random.default_rng(args.seed).permutation(n)
    bounds = [0]
    for f in range(args.kfolds):
        bounds.append(bounds[-1] + n // args.kfolds + (1 if f < n % args.kfolds else 0))
    losses, accs = [], []
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for fold in range(args.folds):
        torch.manual_seed(args.seed * 1000 + fold)
        test_idx = torch.as_tensor(perm[bounds[fold]:bounds[fold + 1]], device=dev)
        train_rows = np.concatenate([perm[:bounds[fold]], perm[bounds[fold + 1]:]])
        ntr = len(train_rows) - int(len(train_rows) * 0.2)
        tr = torch.as_tensor(train_rows[:ntr], device=dev)
        va = torch.as_tensor(train_rows[ntr:], device=dev)
        model = Net().to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        for epoch in range(args.epochs):
            order = tr[torch.randperm(ntr, device=dev)]
            for i in range(0, ntr, 100):
                rows = order[i:i + 100]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x_all[rows]), y_all[rows])
                loss.backward()
                opt.step()
            evaluate(model, x_all[va], y_all[va])   # Keras reports val_loss each epoch
        loss, acc = evaluate(model, x_all[test_idx], y_all[test_idx])
        losses.append(loss)
        accs.append(acc)
        print("%s fold %d loss=%.6f accuracy=%.6f" % (mode, fold, loss, acc), flush=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().numpy().astype("<f4").tobytes())
    print("%s seconds=%.3f folds=%d mean_loss=%.6f mean_accuracy=%.6f fingerprint=%s"
          % (mode, seconds, args.folds, float(np.mean(losses)), float(np.mean(accs)),
             h.hexdigest()[:32]), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("DETRUN_DATA",
                                                     "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--kfolds", type=int, default=10, help="folds the data is cut into")
    ap.add_argument("--folds", type=int, default=10, help="folds actually run (timed)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", default="deterministic,default")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("torch_seed.py: no CUDA device")
    dev = torch.device("cuda")
    images, labels = idx_data.train_set(args.data, "torch_seed.py")
    x = images.astype(np.float32) / 255.0
    y = labels.astype(np.int64)
    x_all = torch.as_tensor(x, device=dev).unsqueeze(1)
    y_all = torch.as_tensor(y, device=dev)
    print("torch %s, cuDNN %s, %s" % (torch.__version__, torch.backends.cudnn.version(),
                                      torch.cuda.get_device_name(0)), flush=True)
    # Warm-up (CUDA context, cuDNN handles, kernels) outside the timings.
    warm = argparse.Namespace(**vars(args))
    warm.folds, warm.epochs = 1, 1
    for mode in args.modes.split(","):
        run(mode, x_all[:2000], y_all[:2000], warm, dev)
    for mode in args.modes.split(","):
        run(mode, x_all, y_all, args, dev)


if __name__ == "__main__":
    main()
