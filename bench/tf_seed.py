#!/usr/bin/env python3
"""TensorFlow 2.x CPU train steps per second of detrun's reference network.

The peer of bench/compare/torch_steps.py and bench/train_steps, and the seed
network of bench/torch_seed.py and experiments/seed_mnist.lua: Fashion-MNIST
train rows scaled by 1/255, batch 100, conv 3x3x8 relu, maxpool 2, conv 3x3x8
relu, maxpool 2, flatten, dense 128 relu, dropout 0.2, dense 10 softmax,
sparse categorical cross-entropy, Adam(1e-3, 0.9, 0.999, 1e-7), Keras'
Glorot-uniform weights and zero biases. Images are channels last (NHWC), the
layout TensorFlow's CPU convolutions take. The batches are cut from the data
in memory beforehand (as tensors), so a step is the compiled train step alone.

Each process runs one mode, since op determinism is meant to be switched on
before any op runs and the thread pools are fixed once TensorFlow starts:
  default        a tf.function train step (jit_compile off)
  deterministic  the same after tf.config.experimental.enable_op_determinism()
  xla            the same step with jit_compile=True (XLA), without op determinism
Every mode first calls tf.keras.utils.set_random_seed(seed). Threads:
tf.config.threading.set_intra_op_parallelism_threads(THREADS) and inter-op 1.

A fit is `steps` batches (rows 0 .. 100*steps-1, as torch_steps.py); the first
fit warms up (tracing, graph optimisation, XLA compilation) and its final
weights, `steps` steps from the seed, are hashed; then the median steps/s of
`runs` timed fits that go on training the same model.

  tf_seed.py THREADS [steps (20)] [runs (5)] [data dir] [--mode M] [--seed S]
  tf_seed.py --check-threads [steps (20)] [data dir]
Prints:  tf MODE THREADS STEPS_PER_S
         tfhash MODE THREADS HASH      (SHA-256 of the weights, first 16 hex digits)
--check-threads runs the deterministic mode at 1 and 2 threads in two child
processes (no timed fits) and prints both hashes and "same" or "differ".

Runs under bench/.venv-tf (made by bench/cpu_compare.sh: python3 -m venv and
pip install of the pinned tensorflow-cpu).
"""
import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # keep TensorFlow's start-up notes out

import numpy as np

import idx_data   # bench/idx_data.py, beside this file


def network(keras):
    L = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(8, 3, activation="relu"),
        L.MaxPooling2D(2),
        L.Conv2D(8, 3, activation="relu"),
        L.MaxPooling2D(2),
        L.Flatten(),
        L.Dense(128, activation="relu"),
        L.Dropout(0.2),
        L.Dense(10, activation="softmax"),
    ])


def weights_hash(model):
    h = hashlib.sha256()
    for v in model.trainable_variables:
        h.update(np.asarray(v.numpy(), dtype="<f4").tobytes())
    return h.hexdigest()[:16]


def measure(args):
    import tensorflow as tf
    import keras
    # Both before any op runs: the pools are made when the runtime starts.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(args.seed)
    if args.mode == "deterministic":
        tf.config.experimental.enable_op_determinism()

    images, labels = idx_data.train_set(args.data, "tf_seed.py")
    x = images.astype(np.float32) / 255.0
    y = labels.astype(np.int32)
    n = 100 * args.steps
    if n > x.shape[0]:
        sys.exit("tf_seed.py: %d steps need %d rows, the data has %d" % (args.steps, n, x.shape[0]))
    batches = [(tf.constant(x[i:i + 100].reshape(100, 28, 28, 1)), tf.constant(y[i:i + 100]))
               for i in range(0, n, 100)]

    model = network(keras)
    opt = keras.optimizers.Adam(learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    opt.build(model.trainable_variables)   # its slots exist before the step is traced
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function(jit_compile=args.mode == "xla")
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def fit():
        t0 = time.perf_counter()
        for xb, yb in batches:
            loss = step(xb, yb)
        loss.numpy()   # the last step has finished
        return time.perf_counter() - t0

    fit()
    print("tfhash %s %d %s" % (args.mode, args.threads, weights_hash(model)), flush=True)
    if args.runs > 0:
        secs = [fit() for _ in range(args.runs)]
        print("tf %s %d %.1f" % (args.mode, args.threads, args.steps / statistics.median(secs)),
              flush=True)


def check_threads(args):
    hashes = []
    for t in (1, 2):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), str(t), str(args.steps),
                              "0", args.data, "--mode", "deterministic", "--seed", str(args.seed)],
                             check=True, capture_output=True, text=True).stdout
        line = [l for l in out.splitlines() if l.startswith("tfhash ")]
        if not line:
            sys.exit("tf_seed.py: no hash from the child at %d threads:\n%s" % (t, out))
        print(line[0], flush=True)
        hashes.append(line[0].split()[3])
    print("deterministic, %d steps, 1 vs 2 threads: %s"
          % (args.steps, "same" if hashes[0] == hashes[1] else "differ"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-threads", action="store_true",
                    help="hash the deterministic weights at 1 and 2 threads and compare")
    ap.add_argument("pos", nargs="*", help="THREADS [steps] [runs] [data dir]")
    ap.add_argument("--mode", default="default", choices=("default", "deterministic", "xla"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    pos = list(a.pos)
    if not a.check_threads:
        if not pos:
            ap.error("THREADS is required")
        a.threads = int(pos.pop(0))
    a.steps = int(pos.pop(0)) if pos else 20
    a.runs = int(pos.pop(0)) if pos and not a.check_threads else 5
    a.data = pos.pop(0) if pos else os.environ.get("DETRUN_DATA",
                                                   "/usr/share/datasets/fashion-mnist")
    if pos:
        ap.error("too many arguments: %s" % " ".join(pos))
    if a.steps < 1 or a.runs < 0 or (not a.check_threads and a.threads < 1):
        ap.error("THREADS and steps must be >= 1, runs >= 0")
    if a.check_threads:
        check_threads(a)
    else:
        measure(a)


if __name__ == "__main__":
    main()
