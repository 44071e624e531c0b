"""Training time and MNIST test accuracy of the book's digit classifier.

Loads the zoo's ``digit_classifier`` (or retrains it) and prints how long its training took and
its accuracy on the 10,000 test images: grey levels, statically binarized
(one Bernoulli draw, ``load_mnist("test", binarize="static")``) and thresholded at 0.5.

Run from the repository root:  python benchmarks/classifier_accuracy.py [--retrain] [--threads N]
``--retrain`` trains it with its recipe in a temporary cache folder instead of loading the
shipped weights.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

import vae_lib
from vae_lib import zoo
from vae_lib.classifier import accuracy, confidence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--retrain", action="store_true", help="train anew in a temporary cache")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()}")

    with tempfile.TemporaryDirectory() as tmp:
        if args.retrain:
            os.environ[vae_lib.paths.CACHE_ENV_VAR] = tmp
        start = time.perf_counter()
        model, record = zoo.load("digit_classifier", "cpu", retrain=args.retrain)
        elapsed = time.perf_counter() - start
    history = record.history
    print(
        f"zoo.load('digit_classifier'): {elapsed:.1f} s (training itself took "
        f"{history.total_seconds:.1f} s over {len(history.epoch)} epochs when it was trained)"
    )
    print(f"settings: {history.settings}")
    print("val accuracy per epoch: " + ", ".join(f"{a:.4f}" for a in history.val_accuracy))

    test_x, test_y = vae_lib.load_mnist("test")
    results = {
        "grey": test_x,
        "binarized (static)": vae_lib.load_mnist("test", binarize="static").images,
        "binarized (threshold)": vae_lib.load_mnist("test", binarize="threshold").images,
    }
    for name, images in results.items():
        acc = accuracy(model, images, test_y)
        conf = confidence(model, images).mean().item()
        print(f"test accuracy, {name:22s}: {acc:.4f}   mean confidence {conf:.4f}")


if __name__ == "__main__":
    main()
