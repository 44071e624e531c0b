"""The book's reference VAE, trained once and shared by the chapters through the cache.

A 784-400-20 MLP VAE with a Bernoulli decoder, trained with Adam (lr 1e-3, batches of 128) on
dynamically binarized MNIST: the 50,000 images of the ``"train"`` split, validated on the
10,000 of ``"val"``. The first chapter that asks for it trains it (about a minute on a 2-core
CPU); every later call, in any chapter, loads it from ``.cache/``.
"""

from __future__ import annotations

import torch

from .cache import fit_or_load
from .data import load_mnist
from .device import default_device
from .training import History, fit
from .vae import VAE, VAEConfig

#: Architecture of the reference model.
REFERENCE_CONFIG = VAEConfig(input_shape=(1, 28, 28), hidden_dims=(400,), latent_dim=20)
#: How it is trained (the cache key includes all of these).
REFERENCE_TRAINING = {
    "epochs": 20,
    "batch_size": 128,
    "lr": 1e-3,
    "beta": 1.0,
    "binarize": "dynamic",
    "train_split": "train",
    "val_split": "val",
}


def reference_vae(
    device: torch.device | str | None = None, *, progress: bool = True
) -> tuple[VAE, History]:
    """The trained reference VAE and its training :class:`History` (trained on first use).

    Args:
        device: where to put the model (default: :func:`vae_lib.default_device`).
        progress: show a progress bar if it has to be trained.

    Returns:
        ``(model, history)``, the model in eval mode.
    """
    device = torch.device(device) if device is not None else default_device()
    settings = dict(REFERENCE_TRAINING)

    def build() -> VAE:
        return VAE(VAEConfig(**vars(REFERENCE_CONFIG))).to(device)

    def train(model: VAE) -> History:
        train_x, _ = load_mnist(settings["train_split"])
        val_x, _ = load_mnist(settings["val_split"])
        return fit(
            model,
            train_x,
            epochs=settings["epochs"],
            batch_size=settings["batch_size"],
            lr=settings["lr"],
            val_x=val_x,
            beta=settings["beta"],
            binarize=settings["binarize"],
            progress=progress,
            seed=0,
        )

    return fit_or_load("reference_vae", build, train, config=settings, seed=0)
