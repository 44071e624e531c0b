"""Test log-likelihood of a book model, measured the way papers report it.

Loads one of the model zoo's VAEs (``vae_lib.zoo``), then evaluates on the MNIST test set,
statically binarized with seed 0:

* NLL = -L_k, the importance-weighted bound with k importance samples per image
  (Burda et al., 2015; k = 5000 is the protocol of the IWAE paper), in nats per image;
* the ELBO (= L_1), averaged over ``--elbo-draws`` single-sample draws.

Run from the repository root, e.g.::

    python benchmarks/nll.py --model mnist_vae            # full test set, k = 5000
    python benchmarks/nll.py --model reference_vae -n 2000 -k 1000

On a 2-core CPU the full protocol for ``mnist_vae`` takes a few minutes (10,000 images x 5000
decoder passes). Models come from the zoo's shipped weights (``VAE_LIB_RETRAIN=name``
retrains one into ``$VAE_LIB_CACHE``), data from ``$VAE_LIB_DATA`` (default ``data/``).
"""

from __future__ import annotations

import argparse
import time

import torch

import vae_lib

MODELS = sorted(n for n, e in vae_lib.zoo.ENTRIES.items() if e.model in ("VAE", "ConvVAE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=MODELS, default="mnist_vae")
    parser.add_argument("-k", type=int, default=5000, help="importance samples per image")
    parser.add_argument("-n", type=int, default=10_000, help="first n test images (max 10,000)")
    parser.add_argument("--batch", type=int, default=100, help="test images per chunk")
    parser.add_argument("--elbo-draws", type=int, default=10, help="ELBO draws to average")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 1 <= args.n <= 10_000 or args.k < 1 or args.batch < 1:
        parser.error("need 1 <= n <= 10000, k >= 1 and batch >= 1")

    device = vae_lib.default_device()
    model, record = vae_lib.zoo.load(args.model, device)
    history = record.history
    test = vae_lib.load_mnist("test", binarize="static", seed=0).images[: args.n].to(device)
    generator = torch.Generator(device).manual_seed(args.seed)

    start = time.perf_counter()
    nll, sem = vae_lib.zoo.test_nll(model, args.k, args.n, batch_size=args.batch, seed=args.seed)
    with torch.no_grad():
        elbos = torch.stack(
            [model(test, generator=generator).elbo for _ in range(args.elbo_draws)]
        ).mean(0)
    seconds = time.perf_counter() - start

    n = test.shape[0]
    print(f"model:          {args.model} ({sum(p.numel() for p in model.parameters()):,} params)")
    print(f"training:       {len(history.epoch)} epochs, {history.total_seconds:.0f} s")
    print(f"test images:    first {n:,} of the test set, statically binarized (seed 0)")
    print(f"NLL (IWAE):     {nll:.2f} +- {sem:.2f} nats  (k = {args.k})")
    print(f"-ELBO:          {-elbos.mean().item():.2f} nats  ({args.elbo_draws} draws)")
    print(f"evaluation:     {seconds:.0f} s on {device}")


if __name__ == "__main__":
    main()
