"""idx_data.py - the Fashion-MNIST training files for the peers in bench/
(torch_seed.py, tf_seed.py): IDX files, gzipped or not, as numpy arrays."""
import gzip
import os
import sys

import numpy as np


def read_idx(path):
    """The array of an IDX file (unsigned bytes)."""
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(folder, stem, who):
    """folder/stem.gz or folder/stem; ends the program, naming who, when neither is there."""
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    sys.exit("%s: no %s[.gz] in %s" % (who, stem, folder))


def train_set(folder, who):
    """(images as uint8 (n, 28, 28), labels as uint8 (n,)) of the training files."""
    return (read_idx(find(folder, "train-images-idx3-ubyte", who)),
            read_idx(find(folder, "train-labels-idx1-ubyte", who)))
