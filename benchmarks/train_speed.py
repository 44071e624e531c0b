"""Seconds per epoch of the reference MLP VAE: vae_lib.fit against the usual tutorial loop.

The reference model is 784-400-20 (one hidden layer of 400 units, z of dimension 20), trained
with Adam (lr 1e-3) on batches of 128 dynamically binarized MNIST digits, one epoch over the
60,000 training images. Both loops use the same model, optimizer and loss; only the data path
differs:

* vae_lib: the data set is one in-memory tensor; a batch is one indexing operation plus one
  vectorised Bernoulli draw (``vae_lib.fit``).
* tutorial: ``torchvision.datasets.MNIST`` with ``transform=ToTensor()`` behind a
  ``torch.utils.data.DataLoader`` (PIL image -> tensor for every image, every epoch).

Run from the repository root:  python benchmarks/train_speed.py [--threads N] [--epochs N]
The data folder is taken from $VAE_LIB_DATA (or data/), as everywhere in the book.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

import vae_lib


def tutorial_epoch(model: vae_lib.VAE, optimizer: torch.optim.Optimizer, root: str) -> float:
    """One epoch of the common DataLoader + ToTensor loop; returns seconds."""
    dataset = datasets.MNIST(root, train=True, download=False, transform=transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=128, shuffle=True)
    model.train()
    start = time.perf_counter()
    for images, _ in loader:
        images = torch.bernoulli(images)
        loss = -model(images).elbo.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per loop (best is kept)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = str(vae_lib.data_root())
    train_x, _ = vae_lib.load_mnist("trainval")  # all 60,000 training images
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")

    vae_lib.set_seed(0)
    model = vae_lib.VAE(vae_lib.VAEConfig(hidden_dims=(400,), latent_dim=20))
    history = vae_lib.fit(
        model,
        train_x,
        epochs=args.epochs,
        batch_size=128,
        lr=1e-3,
        binarize="dynamic",
        progress=False,
    )
    fast = min(history.seconds)

    vae_lib.set_seed(0)
    model = vae_lib.VAE(vae_lib.VAEConfig(hidden_dims=(400,), latent_dim=20))
    optimizer = vae_lib.training.make_adam(model.parameters(), 1e-3)
    slow = min(tutorial_epoch(model, optimizer, root) for _ in range(args.epochs))

    print(f"vae_lib.fit (in-memory tensors): {fast:6.2f} s/epoch")
    print(f"DataLoader + ToTensor loop:      {slow:6.2f} s/epoch")
    print(f"speed-up:                        {slow / fast:6.2f}x")


if __name__ == "__main__":
    main()
